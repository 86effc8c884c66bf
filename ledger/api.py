"""JSON API of the ledger: villages, households, statements, rules, awards, verification."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l

from accounts.auth import Role, api_actor, roles_required
from core.api import Blueprint
from core.db import db, transactional, utcnow
from core.errors import Forbidden, ValidationFailed
from core.spreadsheets import CSV_MIMETYPES, XLSX_MIMETYPE
from ledger import schemas as s
from ledger import services

blp = Blueprint("ledger_api", __name__, url_prefix="/api/v1", description="Points ledger")

ANY_ROLE: tuple[Role, ...] = ()
OFFICE = (Role.ADMIN, Role.CADRE)


@blp.route("/villages", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(s.VillageIn)
@blp.response(201, s.VillageOut)
@transactional()
def create_village(data: dict[str, Any]) -> Any:
    return services.create_village(db.session, actor=api_actor(), now=utcnow(), **data)


@blp.route("/villages", methods=["GET"])
@roles_required(*ANY_ROLE)
@blp.response(200, s.VillageList)
def list_villages() -> Any:
    return {"villages": services.list_villages(db.session)}


@blp.route("/villages/<string:code>", methods=["PATCH"])
@roles_required(*OFFICE)
@blp.arguments(s.VillagePatch)
@blp.response(200, s.VillageOut)
@transactional()
def update_village(data: dict[str, Any], code: str) -> Any:
    return services.update_village(db.session, actor=api_actor(), code=code, **data)


@blp.route("/households", methods=["POST"])
@roles_required(*OFFICE)
@blp.arguments(s.HouseholdIn)
@blp.response(201, s.HouseholdOut)
@transactional()
def create_household(data: dict[str, Any]) -> Any:
    return services.create_household(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        village_code=data["village_code"],
        head_name=data["head_name"],
        members=[m["name"] for m in data["members"]],
        address=data["address"],
    )


@blp.route("/households", methods=["GET"])
@roles_required(*OFFICE)
@blp.arguments(s.HouseholdQuery, location="query")
@blp.response(200, s.HouseholdList)
def search_households(query: dict[str, Any]) -> Any:
    rows, total = services.search_households(db.session, actor=api_actor(), **query)
    return {"households": rows, "total": total}


def _readable_household(household_id: int) -> Any:
    """Shop staff look any household up at the counter; a cadre sees only their village."""
    household = services.get_household(db.session, household_id)
    actor = api_actor()
    if actor.role == Role.CADRE and not actor.may_manage_village(household.village.code):
        raise Forbidden(_l("outside your village"))
    return household


@blp.route("/households/<id:household_id>", methods=["GET"])
@roles_required(*ANY_ROLE)
@blp.response(200, s.HouseholdOut)
def get_household(household_id: int) -> Any:
    return _readable_household(household_id)


@blp.route("/households/<id:household_id>/statement", methods=["GET"])
@roles_required(*ANY_ROLE)
@blp.arguments(s.StatementQuery, location="query")
@blp.response(200, s.StatementOut)
def household_statement(query: dict[str, Any], household_id: int) -> Any:
    _readable_household(household_id)
    entries = services.household_statement(db.session, household_id, **query)
    next_before = entries[-1].id if len(entries) == query["limit"] else None
    return {"household_id": household_id, "entries": entries, "next_before": next_before}


@blp.route("/ledger/verify", methods=["GET"])
@roles_required(Role.ADMIN)
@blp.response(200, s.VerifyOut)
def verify_ledger() -> Any:
    return services.verify_ledger(db.session)


@blp.route("/rules", methods=["POST"])
@roles_required(*OFFICE)
@blp.arguments(s.RuleIn)
@blp.response(201, s.RuleOut)
@transactional()
def create_rule(data: dict[str, Any]) -> Any:
    return services.create_rule(db.session, actor=api_actor(), now=utcnow(), **data)


# The county app's reporter account needs the rule codes to declare deeds under.
@blp.route("/rules", methods=["GET"])
@roles_required(Role.ADMIN, Role.CADRE, Role.MANAGER, Role.CLERK, Role.REPORTER)
@blp.arguments(s.RuleQuery, location="query")
@blp.response(200, s.RuleList)
def list_rules(query: dict[str, Any]) -> Any:
    return {"rules": services.rules_in_force(db.session, query["village_code"])}


def _award_body(posting: services.Posting) -> dict[str, Any]:
    return {
        "transfer_id": posting.transfer.id,
        "kind": posting.transfer.kind,
        "points": posting.signed_points,
        "balance": posting.balance,
    }


@blp.route("/awards", methods=["POST"])
@roles_required(*OFFICE)
@blp.arguments(s.AwardIn)
@blp.response(201, s.AwardOut)
@transactional()
def post_award(data: dict[str, Any]) -> Any:
    posting = services.post_award(db.session, actor=api_actor(), now=utcnow(), **data)
    return _award_body(posting)


@blp.route("/awards/import", methods=["POST"])
@roles_required(*OFFICE)
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}},
        },
        "description": (
            "A CSV text (UTF-8 or GB18030) or an Excel workbook (first sheet). Columns: "
            "household_id (户号), rule_code (规则: a rule's code or exact title), "
            "persons (人数), reason (事由), idempotency_key (流水号, optional)"
        ),
    }
)
@blp.response(200, s.ImportOut)
@transactional()
def import_awards() -> Any:
    if request.mimetype not in (*CSV_MIMETYPES, XLSX_MIMETYPE):
        raise ValidationFailed(_l("send the file as text/csv or as %(xlsx)s", xlsx=XLSX_MIMETYPE))
    # What the bytes are decides how they are read: a workbook sent as text/csv is
    # still a workbook.
    sheet = services.read_award_sheet(
        request.get_data(), max_rows=current_app.config["IMPORT_MAX_ROWS"]
    )
    return services.import_awards(db.session, actor=api_actor(), now=utcnow(), sheet=sheet)


@blp.route("/corrections", methods=["POST"])
@roles_required(*OFFICE)
@blp.arguments(s.CorrectionIn)
@blp.response(201, s.AwardOut)
@transactional()
def post_correction(data: dict[str, Any]) -> Any:
    posting = services.post_correction(db.session, actor=api_actor(), now=utcnow(), **data)
    return _award_body(posting)

"""HTML pages of the ledger for the county office and village cadres."""

from __future__ import annotations

import io
import uuid
from typing import Any, TypeVar

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice

from accounts.auth import Role, current_actor, page_roles_required
from core.db import db, run_unit_of_work, utcnow
from core.errors import DomainError, Forbidden
from core.spreadsheets import XLSX_MIMETYPE
from core.templating import problem_box
from ledger import services
from ledger.forms import (
    AwardForm,
    HouseholdForm,
    ImportForm,
    RuleForm,
    VillageEditForm,
    VillageForm,
    VillageHomeShopForm,
    split_members,
)
from ledger.labels import KIND_LABELS
from ledger.models import Household, PointRule, Village

bp = Blueprint("ledger", __name__)

OFFICE = (Role.ADMIN, Role.CADRE)
HOUSEHOLDS_PER_PAGE = 20
STATEMENT_PER_PAGE = 30
MAX_TRANSFER_ID = 2**62
MAX_PAGE = 100_000

PER_LABELS = {"household": _l("per household"), "person": _l("per person")}
LIMIT_LABELS = {"day": _l("day"), "week": _l("week"), "month": _l("month")}
T = TypeVar("T")


# --- shared page helpers -------------------------------------------------------------


def _refusal(exc: DomainError, form: FlaskForm | None = None) -> tuple[dict[str, Any], int]:
    db.session.rollback()
    return problem_box(exc, form), exc.status


def _invalid_form() -> tuple[dict[str, Any], int]:
    return {"title": _("Please correct the marked fields."), "detail": "", "messages": []}, 422


def _managed_villages() -> list[Village]:
    actor = current_actor()
    return [v for v in services.list_villages(db.session) if actor.may_manage_village(v.code)]


def _village_choices(villages: list[Village]) -> list[SelectChoice]:
    return [
        SelectChoice(v.code, _("%(name)s (%(code)s)", name=v.name, code=v.code)) for v in villages
    ]


def _text_arg(name: str, *, default: str | None = "", most: int = 100) -> str | None:
    value = request.args.get(name)
    return default if value is None else value.replace("\x00", "")[:most]


def _int_arg(name: str, *, default: int | None, low: int, high: int) -> int | None:
    value = request.args.get(name, type=int)
    return value if value is not None and low <= value <= high else default


# --- villages ------------------------------------------------------------------------


@bp.route("/villages", methods=["GET", "POST"])
@page_roles_required(*OFFICE)
def villages() -> Any:
    actor = current_actor()
    form = VillageForm()
    problem, status = None, 200
    if request.method == "POST":
        if form.validate():
            try:
                village = run_unit_of_work(
                    lambda: services.create_village(
                        db.session,
                        actor=actor,
                        now=utcnow(),
                        code=form.code.data,
                        name=form.name.data,
                        redemption_floor=form.redemption_floor.data,
                    )
                )
            except DomainError as exc:
                problem, status = _refusal(exc, form)
            else:
                flash(
                    _(
                        "Village %(name)s (%(code)s) was created.",
                        name=village.name,
                        code=village.code,
                    ),
                    "success",
                )
                return redirect(url_for(".villages"))
        else:
            problem, status = _invalid_form()
    rows = []
    for village in services.list_villages(db.session):
        count = None
        if actor.may_manage_village(village.code):
            # Counting through the scoped search keeps a cadre to numbers they may see.
            _none, count = services.search_households(
                db.session, actor=actor, village_code=village.code, limit=0
            )
        rows.append({"village": village, "households": count})
    return render_template(
        "ledger/villages.html", rows=rows, form=form, problem=problem, is_admin=actor.is_admin
    ), status


@bp.route("/villages/<string:code>/edit", methods=["GET", "POST"])
@page_roles_required(*OFFICE)
def village_edit(code: str) -> Any:
    actor = current_actor()
    village = services.get_village(db.session, code)
    if not actor.may_manage_village(village.code):
        raise Forbidden(_l("You may only change your own village."))
    form: VillageEditForm
    if actor.is_admin:
        form = VillageHomeShopForm(obj=village)
        form.shop_code.choices = [
            SelectChoice("", _("— none —")),
            *(
                SelectChoice(shop, _("%(name)s (%(code)s)", name=name, code=shop))
                for shop, name in services.shop_names(db.session)
            ),
        ]
        if request.method == "GET":
            form.shop_code.data = village.shop_code or ""
    else:
        form = VillageEditForm(obj=village)
    problem, status = None, 200
    if request.method == "POST":
        if form.validate():
            home_shop = (
                (form.shop_code.data or None)
                if isinstance(form, VillageHomeShopForm) and form.shop_code.raw_data
                else services.KEEP
            )
            try:
                run_unit_of_work(
                    lambda: services.update_village(
                        db.session,
                        actor=actor,
                        code=code,
                        name=form.name.data,
                        redemption_floor=form.redemption_floor.data,
                        shop_code=home_shop,
                    )
                )
            except DomainError as exc:
                problem, status = _refusal(exc, form)
            else:
                flash(_("The village was saved."), "success")
                return redirect(url_for(".villages"))
        else:
            problem, status = _invalid_form()
    return render_template(
        "ledger/village_edit.html", village=village, form=form, problem=problem
    ), status


# --- households ----------------------------------------------------------------------


@bp.route("/households", methods=["GET", "POST"])
@page_roles_required(*OFFICE)
def households() -> Any:
    actor = current_actor()
    managed = _managed_villages()
    form = HouseholdForm()
    form.village_code.choices = [SelectChoice("", _("— choose —")), *_village_choices(managed)]
    if request.method == "GET" and len(managed) == 1:
        form.village_code.data = managed[0].code
    problem, status = None, 200
    if request.method == "POST":
        if form.validate():
            try:
                household = run_unit_of_work(
                    lambda: services.create_household(
                        db.session,
                        actor=actor,
                        now=utcnow(),
                        village_code=form.village_code.data,
                        head_name=form.head_name.data,
                        members=split_members(form.members.data),
                        address=form.address.data or None,
                    )
                )
            except DomainError as exc:
                problem, status = _refusal(exc, form)
            else:
                flash(
                    _(
                        "Household %(id)s (head: %(head)s) was created.",
                        id=household.id,
                        head=household.head_name,
                    ),
                    "success",
                )
                return redirect(url_for(".household", household_id=household.id))
        else:
            problem, status = _invalid_form()

    q = _text_arg("q") or ""
    village_filter = _text_arg("village", most=32) or ""
    page = _int_arg("page", default=1, low=1, high=MAX_PAGE) or 1
    rows, total = services.search_households(
        db.session,
        actor=actor,
        q=q,
        village_code=village_filter or None,
        limit=HOUSEHOLDS_PER_PAGE,
        offset=(page - 1) * HOUSEHOLDS_PER_PAGE,
    )
    pages = max(1, -(-total // HOUSEHOLDS_PER_PAGE))
    return render_template(
        "ledger/households.html",
        households=rows,
        total=total,
        page=page,
        pages=pages,
        q=q,
        village_filter=village_filter,
        villages=managed,
        form=form,
        problem=problem,
        score=_score,
    ), status


def _score(household: Household) -> int:
    # The same figure the API publishes as integrity_score (ledger/schemas.py).
    return household.account.earned_total - household.account.penalty_total


def _rule_label(rule: PointRule) -> str:
    return _(
        "%(title)s (%(points)s points, %(per)s)",
        title=rule.title,
        points=f"{rule.points:+d}",
        per=PER_LABELS.get(rule.per, rule.per),
    )


@bp.route("/households/<id:household_id>", methods=["GET", "POST"])
@page_roles_required(*OFFICE)
def household(household_id: int) -> Any:
    actor = current_actor()
    found = services.get_household(db.session, household_id)
    if not actor.may_manage_village(found.village.code):
        raise Forbidden(_l("This household belongs to another village; you may only see your own."))
    rules = services.rules_in_force(db.session, found.village.code)
    form = AwardForm()
    form.rule_code.choices = [
        SelectChoice("", _("— no rule: enter points and a reason —")),
        # app.js shows the persons field only for per-person rules.
        *(SelectChoice(r.code, _rule_label(r), render_kw={"data-per": r.per}) for r in rules),
    ]
    problem, status = None, 200
    if request.method == "POST":
        if form.validate():
            try:
                posting = run_unit_of_work(
                    lambda: services.post_award(
                        db.session,
                        actor=actor,
                        now=utcnow(),
                        household_id=household_id,
                        idempotency_key=form.idempotency_key.data,
                        rule_code=form.rule_code.data or None,
                        persons=form.persons.data,
                        points=form.points.data,
                        reason=form.reason.data or None,
                    )
                )
            except DomainError as exc:
                problem, status = _refusal(exc, form)
            else:
                _flash_posting(posting)
                return redirect(url_for(".household", household_id=household_id))
        else:
            problem, status = _invalid_form()
    # A fresh key per drawing: a failed post recorded nothing, so it cannot clash.
    form.idempotency_key.data = uuid.uuid4().hex

    before = _int_arg("before", default=None, low=1, high=MAX_TRANSFER_ID)
    entries = services.household_statement(
        db.session, household_id, limit=STATEMENT_PER_PAGE + 1, before=before
    )
    older = entries[STATEMENT_PER_PAGE - 1].id if len(entries) > STATEMENT_PER_PAGE else None
    return render_template(
        "ledger/household.html",
        household=found,
        account=found.account,
        score=_score(found),
        people=services.people_count(found),
        entries=entries[:STATEMENT_PER_PAGE],
        older=older,
        before=before,
        kind_labels=KIND_LABELS,
        form=form,
        problem=problem,
    ), status


def _flash_posting(posting: services.Posting) -> None:
    if posting.replayed:
        flash(
            _(
                "This was already recorded; it was not posted a second time. "
                "Balance: %(balance)s points.",
                balance=posting.balance,
            ),
            "info",
        )
        return
    flash(
        _(
            "%(points)s points recorded (%(reason)s). New balance: %(balance)s points.",
            points=f"{posting.signed_points:+d}",
            reason=posting.transfer.reason or "",
            balance=posting.balance,
        ),
        "success",
    )


# --- rules ---------------------------------------------------------------------------


@bp.route("/rules", methods=["GET", "POST"])
@page_roles_required(*OFFICE)
def rules() -> Any:
    actor = current_actor()
    all_villages = services.list_villages(db.session)
    managed = [v for v in all_villages if actor.may_manage_village(v.code)]
    form = RuleForm()
    scope_choices = [SelectChoice("", _("County-wide"))] if actor.is_admin else []
    form.village_code.choices = [*scope_choices, *_village_choices(managed)]
    problem, status = None, 200
    if request.method == "POST":
        if form.validate():
            try:
                rule = run_unit_of_work(
                    lambda: services.create_rule(
                        db.session,
                        actor=actor,
                        now=utcnow(),
                        code=form.code.data,
                        title=form.title.data,
                        points=form.points.data,
                        per=form.per.data,
                        village_code=form.village_code.data or None,
                        limit_count=form.limit_count.data if form.limit_period.data else None,
                        limit_period=form.limit_period.data or None,
                    )
                )
            except DomainError as exc:
                problem, status = _refusal(exc, form)
            else:
                flash(_("Rule %(code)s was created.", code=rule.code), "success")
                where = rule.village.code if rule.village else ""
                return redirect(url_for(".rules", village=where))
        else:
            problem, status = _invalid_form()

    village_filter = _text_arg("village", default=None, most=32)
    if village_filter is None:
        # A cadre first sees what is in force in their own village.
        village_filter = "" if actor.is_admin else (actor.village_code or "")
    in_force = services.rules_in_force(db.session, village_filter or None)
    return render_template(
        "ledger/rules.html",
        rules=in_force,
        villages=all_villages,
        village_filter=village_filter,
        per_labels=PER_LABELS,
        limit_labels=LIMIT_LABELS,
        form=form,
        problem=problem,
    ), status


# --- award import --------------------------------------------------------------------


@bp.route("/awards/import", methods=["GET", "POST"])
@page_roles_required(*OFFICE)
def award_import() -> Any:
    actor = current_actor()
    form = ImportForm()
    problem, status, result, lines, filename, sheet = None, 200, None, [], "", None
    if request.method == "POST":
        if form.validate():
            upload = form.file.data
            filename = upload.filename or ""
            try:
                # The bytes decide whether it is a workbook or CSV, not the file's name.
                sheet = services.read_award_sheet(
                    upload.read(), max_rows=current_app.config["IMPORT_MAX_ROWS"]
                )
                result = run_unit_of_work(
                    lambda: services.import_awards(
                        db.session, actor=actor, now=utcnow(), sheet=sheet
                    )
                )
            except DomainError as exc:
                problem, status = _refusal(exc, form)
            else:
                errors = {e["line"]: e for e in result.errors}
                lines = [
                    {"line": r.line, "row": r.cells, "error": errors.get(r.line)}
                    for r in sheet.rows
                ]
        else:
            problem, status = _invalid_form()
    return render_template(
        "ledger/import.html",
        form=form,
        problem=problem,
        result=result,
        lines=lines,
        filename=filename,
        keys_derived=bool(sheet and sheet.keys_derived),
        max_rows=current_app.config["IMPORT_MAX_ROWS"],
        headers=services.CHINESE_HEADERS,
        template_villages=_managed_villages(),
    ), status


@bp.route("/awards/import/template.xlsx")
@page_roles_required(*OFFICE)
def award_import_template() -> Any:
    managed = _managed_villages()
    wanted = _text_arg("village", default=None, most=32)
    village = next((v for v in managed if v.code == wanted), None)
    if village is None and len(managed) == 1:
        village = managed[0]
    body = services.award_template_workbook(
        db.session, village_code=village.code if village else None
    )
    name = _("Award import template")
    return send_file(
        io.BytesIO(body),
        mimetype=XLSX_MIMETYPE,
        as_attachment=True,
        download_name=f"{name}-{village.name}.xlsx" if village else f"{name}.xlsx",
    )

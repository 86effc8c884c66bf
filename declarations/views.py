"""HTML pages of declarations: the phone page, the review queue, a declaration, the 公示."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectChoice

from accounts.auth import Role, User, current_actor, page_roles_required
from core.db import db, run_unit_of_work, utcnow
from core.errors import DomainError, Forbidden, ValidationFailed
from core.templating import problem_box
from core.timeutil import business_day, local_tz, to_local
from declarations import services
from declarations.edge import allow_photo_uploads, intake, send_photo
from declarations.forms import ApproveForm, CardForm, CorrectForm, DeclarationForm, RejectForm
from declarations.models import Declaration, Status
from declarations.schemas import read_uploads
from declarations.storage import PHOTO, THUMBNAIL
from ledger import services as ledger
from ledger.models import Household, Transfer
from member_cards import services as cards
from member_cards.signing import keyring_from_config

bp = Blueprint("declarations", __name__, url_prefix="/declarations")
bp.url_value_preprocessor(allow_photo_uploads)

DECLARERS = (Role.ADMIN, Role.CADRE, Role.REPORTER)
DECIDERS = (Role.ADMIN, Role.CADRE)
SEARCH_RESULTS = 20
LIST_ROWS = 100
STATUS_LABELS = {
    Status.PENDING: _l("Waiting for review"),
    Status.APPROVED: _l("Approved"),
    Status.REJECTED: _l("Rejected"),
}
PER_LABELS = {"household": _l("per household"), "person": _l("per person")}


def _today() -> date:
    return business_day(utcnow(), local_tz())


def _common() -> dict[str, Any]:
    return {"status_labels": STATUS_LABELS, "per_labels": PER_LABELS, "to_local": to_local}


def _text_arg(name: str, most: int = 100) -> str:
    return (request.args.get(name) or "").replace("\x00", "")[:most].strip()


# --- the list -----------------------------------------------------------------------


@bp.route("")
@page_roles_required(*DECLARERS)
def index() -> Any:
    actor = current_actor()
    status = _text_arg("status", 16)
    status = status if status in set(Status) else ""
    village_code = _text_arg("village", 32) if actor.is_admin else ""
    rows = services.list_declarations(
        db.session,
        actor=actor,
        status=status or None,
        village_code=village_code or None,
        limit=LIST_ROWS,
    )
    return render_template(
        "declarations/index.html",
        rows=rows,
        status=status,
        village_code=village_code,
        villages=ledger.list_villages(db.session) if actor.is_admin else [],
        may_decide=actor.role in DECIDERS,
        home_village=actor.village_code,
        **_common(),
    )


# --- declaring from a phone ---------------------------------------------------------


def _declarable_rules(household: Household) -> list[Any]:
    return [r for r in ledger.rules_in_force(db.session, household.village.code) if r.points > 0]


def _rule_label(rule: Any) -> str:
    return _(
        "%(title)s (%(points)s points, %(per)s)",
        title=rule.title,
        points=f"{rule.points:+d}",
        per=PER_LABELS.get(rule.per, rule.per),
    )


def _chosen_household(actor: User, household_id: int | None) -> Household | None:
    if household_id is None:
        return None
    household = ledger.get_household(db.session, household_id)
    actor.require_declarer(household.village.code)
    return household


@bp.route("/new", methods=["GET", "POST"])
@page_roles_required(*DECLARERS)
def new() -> Any:
    actor = current_actor()
    household = _chosen_household(actor, request.args.get("household", type=int))
    q = _text_arg("q")
    results: list[Household] = []
    if household is None and q:
        found, _total = ledger.search_households(db.session, actor=actor, q=q, limit=SEARCH_RESULTS)
        results = list(found)
    form = DeclarationForm()
    problem, status = None, 200
    if household is not None:
        rules = _declarable_rules(household)
        form.rule_code.choices = [
            SelectChoice("", _("— choose the deed —")),
            *(SelectChoice(r.code, _rule_label(r), render_kw={"data-per": r.per}) for r in rules),
        ]
        if request.method == "POST":
            outcome = _submit(actor, household, form)
            if isinstance(outcome, tuple):
                problem, status = outcome
            else:
                return outcome
        elif not form.happened_on.data:
            form.happened_on.data = _today()
    elif request.method == "POST":
        problem, status = problem_box(ValidationFailed(_l("Choose the household first."))), 422
    # A fresh key per drawing: a refused form recorded nothing, so it cannot clash.
    form.idempotency_key.data = uuid.uuid4().hex
    return render_template(
        "declarations/new.html",
        household=household,
        people=ledger.people_count(household) if household else None,
        q=q,
        results=results,
        form=form,
        card_form=CardForm(),
        problem=problem,
        today=_today(),
        **_common(),
    ), status


def _submit(actor: User, household: Household, form: DeclarationForm) -> Any:
    """The page's intake: a redirect on success, else (problem, status) for the form."""
    if not form.validate():
        return {"title": _("Please correct the marked fields."), "detail": "", "messages": []}, 422
    parts = [part for part in request.files.getlist("photo") if part and part.filename]
    try:
        if not parts:
            raise ValidationFailed(errors={"photo": [_l("Please take or choose a photo.")]})
        submission = services.Submission(
            household_id=household.id,
            rule_code=form.rule_code.data,
            happened_on=form.happened_on.data,
            idempotency_key=form.idempotency_key.data,
            uploads=read_uploads(parts),
            persons=form.persons.data,
            note=form.note.data or None,
        )
        taken = intake(actor, submission)
    except DomainError as exc:
        db.session.rollback()
        return problem_box(exc, form, bare=("photo",)), exc.status
    if taken.replayed:
        flash(_("This declaration was already recorded (No. %(id)s).", id=taken.id), "info")
    else:
        flash(
            _(
                "Declaration No. %(id)s for %(head)s was sent; a village cadre will review it.",
                id=taken.id,
                head=household.head_name,
            ),
            "success",
        )
    if taken.duplicate_of is not None:
        flash(
            _(
                "Its photo looks the same as the photo of declaration No. %(other)s; "
                "the cadre will compare them.",
                other=taken.duplicate_of,
            ),
            "error",
        )
    return redirect(url_for(".new"))


@bp.route("/new/card", methods=["POST"])
@page_roles_required(*DECLARERS)
def card() -> Any:
    """The household behind a scanned member card, then the declaration form for it."""
    actor = current_actor()
    form = CardForm()
    if not form.validate():
        flash(_("No card was read. Scan the card again, or search by name."), "error")
        return redirect(url_for(".new"))
    try:
        found = cards.resolve_card(
            db.session, payload=form.payload.data, keyring=keyring_from_config(current_app.config)
        )
        household = found.household
        actor.require_declarer(household.village.code)
        household_id = household.id
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc.detail or exc.title), "error")
        return redirect(url_for(".new"))
    finally:
        db.session.rollback()
    return redirect(url_for(".new", household=household_id))


# --- reviewing ----------------------------------------------------------------------


def _review_page(
    actor: User,
    current: Declaration | None,
    *,
    problem: Any = None,
    status: int = 200,
    reject_form: RejectForm | None = None,
) -> Any:
    village = _text_arg("village", 32) if actor.is_admin else None
    queue = services.review_queue(db.session, actor=actor, village_code=village or None)
    if current is None:
        current = queue.next
    approve_form = ApproveForm()
    approve_form.idempotency_key.data = uuid.uuid4().hex
    earlier = services.earlier_declaration(db.session, current) if current else None
    duplicate_photo = None
    if current is not None:
        duplicate_photo = next((p for p in current.photos if p.duplicate_of is not None), None)
    return render_template(
        "declarations/review.html",
        queue=queue,
        current=current,
        earlier=earlier,
        duplicate_photo=duplicate_photo,
        points=services.points_for(db.session, current) if current else None,
        may_decide=current is not None and current.submitted_by_id != actor.id,
        approve_form=approve_form,
        reject_form=reject_form or RejectForm(formdata=None),
        problem=problem,
        village=village,
        villages=ledger.list_villages(db.session) if actor.is_admin else [],
        **_common(),
    ), status


@bp.route("/review")
@page_roles_required(*DECIDERS)
def review() -> Any:
    actor = current_actor()
    current = None
    wanted = request.args.get("id", type=int)
    if wanted:
        current = services.readable_declaration(db.session, actor=actor, declaration_id=wanted)
        if current.status != Status.PENDING:
            return redirect(url_for(".detail", declaration_id=current.id))
        if not actor.may_manage_village(current.village.code):
            raise Forbidden(
                _l("only a cadre of the village or the county office decides declarations")
            )
    return _review_page(actor, current)


def _after_decision(declaration_id: int) -> Any:
    target = request.form.get("next") or ""
    if target == "detail":
        return redirect(url_for(".detail", declaration_id=declaration_id))
    return redirect(url_for(".review", village=request.args.get("village") or None))


@bp.route("/<id:declaration_id>/approve", methods=["POST"])
@page_roles_required(*DECIDERS)
def approve(declaration_id: int) -> Any:
    actor = current_actor()
    form = ApproveForm()
    try:
        if not form.validate():
            raise ValidationFailed(EXPIRED_FORM)
        approval = run_unit_of_work(
            lambda: services.approve_declaration(
                db.session,
                actor=actor,
                now=utcnow(),
                declaration_id=declaration_id,
                idempotency_key=form.idempotency_key.data,
            )
        )
    except DomainError as exc:
        db.session.rollback()
        current = services.readable_declaration(
            db.session, actor=actor, declaration_id=declaration_id
        )
        return _review_page(actor, current, problem=problem_box(exc), status=exc.status)
    declaration = approval.declaration
    flash(
        _(
            "Declaration No. %(id)s approved: %(points)s points for %(head)s.",
            id=declaration.id,
            points=_posted_points(approval.transfer_id),
            head=declaration.household.head_name,
        ),
        "success",
    )
    return _after_decision(declaration_id)


EXPIRED_FORM = _l("This form has expired; please reload the page and try again.")
T = TypeVar("T")


def _with_reason(form: Any, decide: Callable[[str], T]) -> T:
    """Run a decision that needs the form's reason, in one unit of work."""
    if not form.validate():
        raise ValidationFailed(errors={"reason": form.reason.errors or [EXPIRED_FORM]})
    return run_unit_of_work(lambda: decide(form.reason.data))


def _posted_points(transfer_id: int) -> str:
    transfer = db.session.get(Transfer, transfer_id)
    return f"{transfer.amount:+d}" if transfer else ""


@bp.route("/<id:declaration_id>/reject", methods=["POST"])
@page_roles_required(*DECIDERS)
def reject(declaration_id: int) -> Any:
    actor = current_actor()
    form = RejectForm()
    try:
        declaration = _with_reason(
            form,
            lambda reason: services.reject_declaration(
                db.session, actor=actor, now=utcnow(), declaration_id=declaration_id, reason=reason
            ),
        )
    except DomainError as exc:
        db.session.rollback()
        current = services.readable_declaration(
            db.session, actor=actor, declaration_id=declaration_id
        )
        box = problem_box(exc, form)
        return _review_page(actor, current, problem=box, status=exc.status, reject_form=form)
    flash(
        _(
            "Declaration No. %(id)s rejected: %(reason)s",
            id=declaration.id,
            reason=form.reason.data,
        ),
        "info",
    )
    return _after_decision(declaration_id)


# --- one declaration, its photos, a correction ----------------------------------------


@bp.route("/<id:declaration_id>")
@page_roles_required(*DECLARERS)
def detail(declaration_id: int) -> Any:
    return _detail_page(current_actor(), declaration_id)


def _detail_page(
    actor: User,
    declaration_id: int,
    *,
    problem: Any = None,
    status: int = 200,
    correct_form: CorrectForm | None = None,
) -> Any:
    declaration = services.readable_declaration(
        db.session, actor=actor, declaration_id=declaration_id
    )
    approve_form = ApproveForm()
    approve_form.idempotency_key.data = uuid.uuid4().hex
    return render_template(
        "declarations/detail.html",
        d=declaration,
        earlier=services.earlier_declaration(db.session, declaration),
        points=services.points_for(db.session, declaration),
        correction=services.correction_of(db.session, declaration),
        may_decide=services.may_decide(actor, declaration),
        may_correct=actor.may_manage_village(declaration.village.code),
        approve_form=approve_form,
        reject_form=RejectForm(formdata=None),
        correct_form=correct_form or CorrectForm(formdata=None),
        problem=problem,
        **_common(),
    ), status


@bp.route("/<id:declaration_id>/correct", methods=["POST"])
@page_roles_required(*DECIDERS)
def correct(declaration_id: int) -> Any:
    actor = current_actor()
    form = CorrectForm()
    try:
        posting = _with_reason(
            form,
            lambda reason: services.correct_approval(
                db.session, actor=actor, now=utcnow(), declaration_id=declaration_id, reason=reason
            ),
        )
    except DomainError as exc:
        db.session.rollback()
        box = problem_box(exc, form)
        return _detail_page(
            actor, declaration_id, problem=box, status=exc.status, correct_form=form
        )
    flash(
        _(
            "%(points)s points taken back (correction No. %(id)s).",
            points=posting.transfer.amount,
            id=posting.transfer.id,
        ),
        "success",
    )
    return redirect(url_for(".detail", declaration_id=declaration_id))


@bp.route("/<id:declaration_id>/photos/<int:position>")
@page_roles_required(*DECLARERS)
def photo(declaration_id: int, position: int) -> Any:
    found = services.readable_photo(
        db.session, actor=current_actor(), declaration_id=declaration_id, position=position
    )
    return send_photo(found.sha256, THUMBNAIL if request.args.get("size") == "thumb" else PHOTO)


# --- the month's public list (公示) -----------------------------------------------------


@bp.route("/public/<string:village_code>")
@page_roles_required(*DECLARERS)
def public(village_code: str) -> Any:
    actor = current_actor()
    today = _today()
    month = services.month_of(request.args.get("month"), today)
    village, rows = services.public_list(
        db.session, actor=actor, village_code=village_code[:32], month=month, tz=local_tz()
    )
    following = services.month_start(services.period_bounds("month", month)[1])
    return render_template(
        "declarations/public.html",
        village=village,
        rows=rows,
        month=month,
        previous=services.previous_month(month),
        following=following if following <= today else None,
        total=sum(_approved_points(d) for d in rows),
        points_of=_approved_points,
        printed_on=today,
        **_common(),
    )


def _approved_points(declaration: Declaration) -> int:
    transfer = (
        db.session.get(Transfer, declaration.transfer_id) if declaration.transfer_id else None
    )
    return transfer.amount if transfer else 0

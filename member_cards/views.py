"""HTML pages of member cards, and the villagers' public balance page."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter import RateLimitExceeded
from flask_login import current_user

from accounts.auth import Role, current_actor, page_roles_required
from core import fonts
from core.db import db, run_unit_of_work, utcnow
from core.errors import (
    CardRevoked,
    DomainError,
    InvalidCard,
    UnknownCard,
    handle_http_exception,
)
from core.limits import limiter
from core.timeutil import to_local
from ledger import services as ledger
from ledger.labels import KIND_LABELS
from member_cards import services, sheets, signing
from member_cards.forms import CardActionForm, RevokeForm
from member_cards.labels import card_status_word, household_card_status
from member_cards.models import MemberCard

bp = Blueprint("member_cards", __name__)

OFFICE = (Role.ADMIN, Role.CADRE)
DEFAULTS: dict[str, Any] = {
    # Per client address, on the public balance page's lookups; flask-limiter's notation.
    "CARD_BALANCE_RATE_LIMIT": "30 per minute",
    # The balance page forgets the last household after this long.
    "CARD_BALANCE_CLEAR_SECONDS": 30,
    # A TrueType font with Chinese characters for card sheets; None: look in usual places.
    "CJK_FONT_PATH": None,
}

EVENT_LABELS = {
    "issued": _l("issued"),
    "revoked": _l("revoked"),
    "replaced": _l("replaced"),
    "reprinted": _l("reprinted"),
}


T = TypeVar("T")


@bp.record_once
def _setup(state: Any) -> None:
    for key, value in DEFAULTS.items():
        state.app.config.setdefault(key, value)
    try:
        signing.keyring_from_config(state.app.config)
    except signing.KeyringError as exc:
        # Said at start-up, not first at a shop counter; card requests fail until fixed.
        state.app.logger.warning("member cards cannot be signed or read: %s", exc)


def _keyring() -> signing.Keyring:
    return signing.keyring_from_config(current_app.config)


def _local(at: datetime | None) -> str:
    return to_local(at).strftime("%Y-%m-%d %H:%M") if at else ""


def _back(target: str | None) -> Any:
    # Only a local path: these buttons sit on other pages, and must not bounce elsewhere.
    # Browsers read a backslash as a slash, so "/\\host" would leave the site too.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return redirect(target)
    return redirect(url_for("home"))


def _flash_refusal(exc: DomainError) -> None:
    db.session.rollback()
    if exc.status in (403, 404):
        # Another village's household or a card that is not there: nothing to fix on the
        # form, so the plain refusal page (403/404), not a message on the way back.
        raise exc
    detail = str(exc.detail) if exc.detail is not None else ""
    title = str(exc.title)
    errors = exc.extra.get("errors") or {}
    texts = [str(m) for messages in errors.values() for m in messages]
    flash(" ".join(t for t in (title, detail if detail != title else "", *texts) if t), "error")


def _flash_form_errors(form: CardActionForm) -> None:
    texts = [str(m) for messages in form.errors.values() for m in messages]
    flash(" ".join([_("The card was not changed."), *texts]), "error")


def _pdf(body: bytes, name: str) -> Any:
    response = send_file(
        io.BytesIO(body), mimetype="application/pdf", as_attachment=True, download_name=name
    )
    # A sheet is a stack of working cards: no shared cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


def _sheet(cards: Sequence[MemberCard], title: str) -> bytes:
    font = fonts.find_cjk_font(current_app.config.get("CJK_FONT_PATH"))
    faces = services.card_faces(cards, _keyring())
    return sheets.render_sheet(faces, font_path=font, title=title)


# --- the card section of the household page -----------------------------------------


@dataclass(frozen=True)
class CardRow:
    id: int
    serial: str
    status: str
    status_label: str
    issued_at: str
    ended_at: str
    revoke_reason: str | None
    replaced_by: str | None
    history: list[dict[str, str]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class HouseholdCards:
    may_manage: bool
    rows: list[CardRow]
    household_id: int | None = None

    @cached_property
    def coded_names(self) -> list[str]:
        """Names on the village's card sheet that print a character as its code ("[U+4DAE]").

        Asked only by the household page's card section, not by every row of a list.
        """
        if not self.may_manage or self.household_id is None:
            return []
        return _coded_names(self.household_id)

    @property
    def active(self) -> CardRow | None:
        return next((row for row in self.rows if row.active), None)

    @property
    def status(self) -> str | None:
        """active, revoked, or None (never issued); what status_word says in words."""
        return household_card_status(row.status for row in self.rows)

    @property
    def status_word(self) -> str:
        # Someone who may not see the cards is told nothing, not "never issued".
        return card_status_word(self.status) if self.may_manage else ""


# Pages outside this package (the balance page's card, any list) say card states in these words.
bp.add_app_template_global(card_status_word, "card_status_word")


@bp.app_template_global()
def household_cards(household_id: int) -> HouseholdCards:
    """What templates/member_cards/_household_cards.html shows for the household."""
    if not current_user.is_authenticated:
        return HouseholdCards(False, [])
    try:
        cards = services.list_household_cards(
            db.session, actor=current_actor(), household_id=household_id
        )
    except DomainError:
        return HouseholdCards(False, [])
    rows = [
        CardRow(
            id=card.id,
            serial=card.serial,
            status=card.status,
            status_label=card_status_word(card.status),
            issued_at=_local(card.issued_at),
            ended_at=_local(card.ended_at),
            revoke_reason=card.revoke_reason,
            replaced_by=card.replaced_by.serial if card.replaced_by else None,
            history=[
                {
                    "kind": str(EVENT_LABELS.get(event.kind, event.kind)),
                    "at": _local(event.at),
                    "by": event.actor.username if event.actor else "",
                    "reason": event.reason or "",
                }
                for event in card.events
            ],
        )
        for card in cards
    ]
    return HouseholdCards(True, rows, household_id)


def _coded_names(household_id: int) -> list[str]:
    """The village sheet's names that no installed font draws whole, as they will print.

    The sheet prints them all the same; the page says which cards need a pen.
    """
    try:
        village = ledger.get_household(db.session, household_id).village
        heads = services.village_sheet_heads(
            db.session, actor=current_actor(), village_code=village.code
        )
        font = fonts.find_cjk_font(current_app.config.get("CJK_FONT_PATH"))
        chain = sheets.pdf_chain(font)
    except DomainError:
        return []  # no font at all: the sheet link answers that itself
    names = []
    for head_id, name in heads:
        if chain.missing(name + village.name):
            names.append(
                _(
                    "%(name)s (household %(id)s)",
                    name=chain.shown(name),
                    id=head_id,
                )
            )
    return names


@bp.route("/households/<id:household_id>/cards", methods=["POST"])
@page_roles_required(*OFFICE)
def issue(household_id: int) -> Any:
    form = CardActionForm()
    if not form.validate():
        _flash_form_errors(form)
        return _back(form.next.data)
    try:
        card = run_unit_of_work(
            lambda: services.issue_card(
                db.session, actor=current_actor(), now=utcnow(), household_id=household_id
            )
        )
    except DomainError as exc:
        _flash_refusal(exc)
    else:
        flash(
            _(
                "Card %(serial)s was issued; any earlier card of this household no longer "
                "works. Print it from the card sheet.",
                serial=card.serial,
            ),
            "success",
        )
    return _back(form.next.data)


@bp.route("/cards/<id:card_id>/revoke", methods=["POST"])
@page_roles_required(*OFFICE)
def revoke(card_id: int) -> Any:
    form = RevokeForm()
    if not form.validate():
        _flash_form_errors(form)
        return _back(form.next.data)
    try:
        card = run_unit_of_work(
            lambda: services.revoke_card(
                db.session,
                actor=current_actor(),
                now=utcnow(),
                card_id=card_id,
                reason=form.reason.data,
            )
        )
    except DomainError as exc:
        _flash_refusal(exc)
    else:
        flash(_("Card %(serial)s was revoked and no longer works.", serial=card.serial), "success")
    return _back(form.next.data)


@bp.route("/cards/<id:card_id>/reprint", methods=["POST"])
@page_roles_required(*OFFICE)
def reprint(card_id: int) -> Any:
    form = CardActionForm()
    if not form.validate():
        _flash_form_errors(form)
        return _back(form.next.data)

    def reprint_and_render() -> tuple[MemberCard, bytes]:
        # Rendered inside the unit of work: no font, no PDF, and no reprint recorded.
        card = services.reprint_card(
            db.session, actor=current_actor(), now=utcnow(), card_id=card_id
        )
        return card, _sheet([card], card.serial)

    try:
        card, body = run_unit_of_work(reprint_and_render)
    except DomainError as exc:
        _flash_refusal(exc)
        return _back(form.next.data)
    return _pdf(body, f"积分卡-{card.serial}.pdf")


@bp.route("/households/<id:household_id>/cards/sheet.pdf")
@page_roles_required(*OFFICE)
def household_sheet(household_id: int) -> Any:
    cards = services.household_sheet_cards(
        db.session, actor=current_actor(), household_id=household_id
    )
    return _pdf(_sheet(cards, cards[0].serial), f"积分卡-{cards[0].serial}.pdf")


@bp.route("/villages/<string:code>/cards/sheet.pdf")
@page_roles_required(*OFFICE)
def village_sheet(code: str) -> Any:
    village = ledger.get_village(db.session, code)
    cards = services.village_sheet_cards(
        db.session, actor=current_actor(), village_code=village.code
    )
    return _pdf(_sheet(cards, village.name), f"积分卡-{village.name}.pdf")


@bp.route("/villages/<string:code>/cards/issue-missing", methods=["POST"])
@page_roles_required(*OFFICE)
def issue_missing(code: str) -> Any:
    form = CardActionForm()
    if not form.validate():
        _flash_form_errors(form)
        return _back(form.next.data)
    try:
        cards = run_unit_of_work(
            lambda: services.issue_missing_cards(
                db.session, actor=current_actor(), now=utcnow(), village_code=code
            )
        )
    except DomainError as exc:
        _flash_refusal(exc)
    else:
        flash(
            _(
                "%(count)s new cards were issued in village %(code)s.",
                count=len(cards),
                code=code,
            ),
            "success",
        )
    return _back(form.next.data)


# --- the public balance page ---------------------------------------------------------


def _balance_limit() -> str:
    return str(current_app.config["CARD_BALANCE_RATE_LIMIT"])


def _clear_seconds() -> float:
    return float(current_app.config["CARD_BALANCE_CLEAR_SECONDS"])


@bp.errorhandler(RateLimitExceeded)
def _too_many_scans(exc: RateLimitExceeded) -> Any:
    # The scan page's script reads JSON; without the script, the usual error page.
    if request.is_json:
        return jsonify(found=False, message=_("Too many scans. Please wait a minute.")), 429
    return handle_http_exception(exc)


@bp.route("/balance", methods=["GET", "POST"])
@limiter.limit(_balance_limit, methods=["POST"])
def balance() -> Any:
    """No login: a villager scans their card and sees their points, then the page forgets."""
    if request.method == "GET":
        return render_template(
            "member_cards/balance.html", view=None, message=None, clear_after=_clear_seconds()
        )
    if request.is_json:
        body = request.get_json(silent=True)
        payload = body.get("payload") if isinstance(body, dict) else None
    else:
        payload = request.form.get("payload")
    view, message = None, None
    try:
        view = services.balance_for_card(db.session, payload=payload, keyring=_keyring())
    except (InvalidCard, UnknownCard, CardRevoked):
        # One plain message for all three, so the page tells nothing about who exists.
        message = _("This card cannot be used. Please ask at the counter.")
    context = {
        "view": view,
        "message": message,
        "kind_labels": KIND_LABELS,
        "local": _local,
        "clear_after": _clear_seconds(),
    }
    if request.is_json:
        html = render_template("member_cards/_balance_result.html", **context)
        return jsonify(found=view is not None, html=html)
    return render_template("member_cards/balance.html", **context)

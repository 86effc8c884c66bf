"""Reading declarations: lists by village and status, the review queue, the month's 公示."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from accounts.auth import User
from core.errors import DomainError, Forbidden, NotFound
from core.ids import is_id
from declarations.models import Declaration, DeclarationPhoto, Status
from declarations.services.intake import period_bounds
from ledger import services as ledger
from ledger.models import Village


def list_declarations(
    session: Session,
    *,
    actor: User,
    status: str | None = None,
    village_code: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> Sequence[Declaration]:
    """Newest first, in the actor's reach: every village for the county office."""
    stmt = select(Declaration)
    if village_code:
        village = ledger.get_village(session, village_code)
        actor.require_declarer(village.code)
        stmt = stmt.where(Declaration.village_id == village.id)
    elif not actor.is_admin:
        stmt = stmt.join(Village, Village.id == Declaration.village_id).where(
            Village.code == (actor.village_code or "")
        )
    if status:
        stmt = stmt.where(Declaration.status == status)
    if before:
        stmt = stmt.where(Declaration.id < before)
    return session.scalars(stmt.order_by(Declaration.id.desc()).limit(limit)).all()


def points_for(session: Session, declaration: Declaration) -> int | None:
    """What approving would post now (the rule in force), or None if no rule is in force."""
    try:
        rule = ledger.find_rule(session, declaration.rule_code, declaration.village)
    except DomainError:
        return None
    return rule.points * (declaration.persons or 1)


@dataclass(frozen=True)
class Queue:
    """Pending declarations oldest first; `next` is the first the actor may decide."""

    pending: Sequence[Declaration]
    next: Declaration | None
    own_waiting: int


def review_queue(session: Session, *, actor: User, village_code: str | None = None) -> Queue:
    if not actor.is_admin and not actor.may_manage_village(actor.village_code or ""):
        raise Forbidden(_l("only a cadre of the village or the county office decides declarations"))
    stmt = select(Declaration).where(Declaration.status == Status.PENDING)
    code = village_code if actor.is_admin else actor.village_code
    if code:
        village = ledger.get_village(session, code)
        stmt = stmt.where(Declaration.village_id == village.id)
    pending = session.scalars(stmt.order_by(Declaration.id).limit(200)).all()
    mine = [d for d in pending if d.submitted_by_id == actor.id]
    nxt = next((d for d in pending if d.submitted_by_id != actor.id), None)
    return Queue(pending=pending, next=nxt, own_waiting=len(mine))


def month_start(value: date) -> date:
    return value.replace(day=1)


def public_list(
    session: Session, *, actor: User, village_code: str, month: date, tz: ZoneInfo
) -> tuple[Village, Sequence[Declaration]]:
    """A village's declarations approved in the month (local time), for the notice board."""
    village = ledger.get_village(session, village_code)
    actor.require_declarer(village.code)
    start, end = period_bounds("month", month_start(month))
    since = datetime.combine(start, datetime.min.time(), tzinfo=tz)
    until = datetime.combine(end, datetime.min.time(), tzinfo=tz)
    rows = session.scalars(
        select(Declaration)
        .where(
            Declaration.village_id == village.id,
            Declaration.status == Status.APPROVED,
            Declaration.decided_at >= since,
            Declaration.decided_at < until,
        )
        .order_by(Declaration.decided_at, Declaration.id)
    ).all()
    return village, rows


def readable_photo(
    session: Session, *, actor: User, declaration_id: int, position: int
) -> DeclarationPhoto:
    """A stored photo the actor may see: of their village's declaration, or the earlier
    picture one of their village's declarations was flagged a copy of (the reviewer must
    see both side by side, whichever village the first one came from)."""
    photo = (
        session.scalar(
            select(DeclarationPhoto).where(
                DeclarationPhoto.declaration_id == declaration_id,
                DeclarationPhoto.position == position,
            )
        )
        if is_id(declaration_id) and 1 <= position <= 3
        else None
    )
    if photo is None:
        raise NotFound(_l("no such photo"))
    if actor.may_declare_for_village(photo.declaration.village.code):
        return photo
    later = aliased(DeclarationPhoto)
    copied_here = session.scalar(
        select(
            exists()
            .where(later.duplicate_of_id == photo.id)
            .where(later.declaration_id == Declaration.id)
            .where(Declaration.village_id == Village.id)
            .where(Village.code == (actor.village_code or ""))
        )
    )
    if copied_here and actor.village_code:
        return photo
    raise Forbidden(_l("outside your village"))


def earlier_declaration(session: Session, declaration: Declaration) -> Declaration | None:
    if declaration.duplicate_of_id is None:
        return None
    return session.get(Declaration, declaration.duplicate_of_id)


def month_of(text: str | None, today: date) -> date:
    """'2026-11' as the month's first day; anything else is this month."""
    if text:
        try:
            year, month = (int(part) for part in text.split("-", 1))
            if 2000 <= year <= 2100 and 1 <= month <= 12:
                return date(year, month, 1)
        except ValueError:
            pass
    return month_start(today)


def previous_month(month: date) -> date:
    return month_start(month - timedelta(days=1))

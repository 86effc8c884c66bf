"""Rule categories and the points a star of each needs per month, quarter or year."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.ids import is_id
from county.models import PeriodKind, RuleCategory, StarThreshold
from ledger.models import PointRule, Village

MAX_THRESHOLD = 100_000
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def list_categories(session: Session, *, active_only: bool = False) -> Sequence[RuleCategory]:
    stmt = select(RuleCategory).order_by(RuleCategory.position, RuleCategory.code)
    if active_only:
        stmt = stmt.where(RuleCategory.active)
    return session.scalars(stmt).all()


def get_category(session: Session, code: str) -> RuleCategory:
    category = session.scalar(select(RuleCategory).where(RuleCategory.code == code))
    if category is None:
        raise NotFound(_l("no category %(code)s", code=code))
    return category


def get_category_by_id(session: Session, category_id: int | None) -> RuleCategory | None:
    return session.get(RuleCategory, category_id) if category_id is not None else None


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed(errors={"name": [_l("1 to 100 characters")]})
    return name


def create_category(
    session: Session,
    *,
    actor: User,
    now: datetime,
    code: str,
    name: str,
    position: int | None = None,
) -> RuleCategory:
    actor.require_admin()
    if not CODE_RE.match(code or ""):
        raise ValidationFailed(errors={"code": [_l("letters, digits, - and _")]})
    name = _clean_name(name)
    if session.scalar(select(RuleCategory.id).where(RuleCategory.code == code)):
        raise Conflict(_l("category %(code)s exists", code=code))
    if position is None:
        position = (session.scalar(select(func.max(RuleCategory.position))) or 0) + 1
    category = RuleCategory(code=code, name=name, position=position, created_at=now)
    session.add(category)
    session.flush()
    return category


def update_category(
    session: Session,
    *,
    actor: User,
    code: str,
    name: str | None = None,
    position: int | None = None,
    active: bool | None = None,
) -> RuleCategory:
    actor.require_admin()
    category = get_category(session, code)
    if name is not None:
        category.name = _clean_name(name)
    if position is not None:
        category.position = position
    if active is not None:
        category.active = active
    session.flush()
    return category


def set_threshold(
    session: Session,
    *,
    actor: User,
    now: datetime,
    category_code: str,
    period_kind: str,
    points: int | None,
) -> StarThreshold | None:
    """Set (or, with None, remove) the points a star of the category needs in a period."""
    actor.require_admin()
    if period_kind not in set(PeriodKind):
        raise ValidationFailed(errors={"period_kind": [_l("month, quarter or year")]})
    if points is not None and not 0 < points <= MAX_THRESHOLD:
        raise ValidationFailed(errors={"points": [_l("1 to %(most)s points", most=MAX_THRESHOLD)]})
    category = get_category(session, category_code)
    row = session.scalar(
        select(StarThreshold).where(
            StarThreshold.category_id == category.id, StarThreshold.period_kind == period_kind
        )
    )
    if points is None:
        if row is not None:
            session.delete(row)
            session.flush()
        session.expire(category, ["thresholds"])
        return None
    if row is None:
        row = StarThreshold(category=category, period_kind=str(period_kind))
        session.add(row)
    row.points = points
    row.updated_at = now
    session.flush()
    return row


def set_rule_category(
    session: Session, *, actor: User, rule_id: int, category_code: str | None
) -> PointRule:
    """Put a rule in a category: the county for any rule, a cadre for their village's own."""
    rule = session.get(PointRule, rule_id) if is_id(rule_id) else None
    if rule is None:
        raise NotFound(_l("no rule %(rule_id)s", rule_id=rule_id))
    if not (actor.is_admin or (rule.village and actor.may_manage_village(rule.village.code))):
        raise Forbidden(_l("only the county office may categorise county-wide rules"))
    rule.category_id = get_category(session, category_code).id if category_code else None
    session.flush()
    return rule


def rules_with_categories(
    session: Session, *, actor: User
) -> list[tuple[PointRule, RuleCategory | None]]:
    stmt = (
        select(PointRule, RuleCategory)
        .outerjoin(RuleCategory, RuleCategory.id == PointRule.category_id)
        .outerjoin(Village, Village.id == PointRule.village_id)
        .order_by(PointRule.village_id.is_not(None), Village.code, PointRule.code)
    )
    if not actor.is_admin:
        stmt = stmt.where(
            or_(PointRule.village_id.is_(None), Village.code == (actor.village_code or ""))
        )
    return [(rule, category) for rule, category in session.execute(stmt).all()]

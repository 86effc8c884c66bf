"""Point rules: the county's, and a village's own that replace them under the same code."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, NotFound, ValidationFailed
from ledger.models import PointRule, Village
from ledger.services.registry import get_village

# One award or penalty larger than this is a typing mistake, not a deed.
MAX_AWARD_POINTS = 10_000
LIMIT_PERIODS = ("day", "week", "month")
LIMIT_MAX = 1_000


def create_rule(
    session: Session,
    *,
    actor: User,
    now: datetime,
    code: str,
    title: str,
    points: int,
    per: str = "household",
    village_code: str | None = None,
    limit_count: int | None = None,
    limit_period: str | None = None,
) -> PointRule:
    village = None
    if village_code:
        village = get_village(session, village_code)
        actor.require_village(village_code)
    else:
        actor.require_admin()
    if points == 0 or abs(points) > MAX_AWARD_POINTS:
        raise ValidationFailed(
            errors={"points": [_l("must be non-zero, at most %(most)s", most=MAX_AWARD_POINTS)]}
        )
    if per not in ("household", "person"):
        raise ValidationFailed(errors={"per": [_l("must be household or person")]})
    # Optional: at most limit_count declarations per household per day, week or month.
    if (limit_count is None) != (limit_period is None):
        raise ValidationFailed(errors={"limit_count": [_l("give a limit with its period")]})
    if limit_count is not None and not 1 <= limit_count <= LIMIT_MAX:
        raise ValidationFailed(errors={"limit_count": [_l("1 to %(most)s", most=LIMIT_MAX)]})
    if limit_period not in (None, *LIMIT_PERIODS):
        raise ValidationFailed(errors={"limit_period": [_l("day, week or month")]})
    clash = select(PointRule.id).where(PointRule.code == code)
    clash = clash.where(
        PointRule.village_id == village.id if village else PointRule.village_id.is_(None)
    )
    if session.scalar(clash):
        raise Conflict(_l("rule %(code)s exists here", code=code))
    rule = PointRule(
        code=code,
        title=title,
        points=points,
        per=per,
        village=village,
        created_at=now,
        limit_count=limit_count,
        limit_period=limit_period,
    )
    session.add(rule)
    session.flush()
    return rule


def rules_in_force(session: Session, village_code: str | None = None) -> list[PointRule]:
    """County-wide rules, each replaced by the village's own rule of the same code."""
    rules = {
        r.code: r
        for r in session.scalars(
            select(PointRule).where(PointRule.village_id.is_(None), PointRule.active)
        )
    }
    if village_code:
        village = get_village(session, village_code)
        for r in session.scalars(
            select(PointRule).where(PointRule.village_id == village.id, PointRule.active)
        ):
            rules[r.code] = r
    return sorted(rules.values(), key=lambda r: r.code)


def find_rule(session: Session, code: str, village: Village) -> PointRule:
    candidates = session.scalars(
        select(PointRule).where(
            PointRule.code == code,
            PointRule.active,
            or_(PointRule.village_id == village.id, PointRule.village_id.is_(None)),
        )
    ).all()
    if not candidates:
        raise NotFound(
            _l("no rule %(code)s in force for village %(village)s", code=code, village=village.code)
        )
    return max(candidates, key=lambda r: r.village_id is not None)

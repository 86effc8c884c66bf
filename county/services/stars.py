"""Stars: a household's net points per rule category against each category's threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from county.models import RuleCategory, StarThreshold
from county.services.categories import list_categories
from county.services.deeds import _deeds
from county.services.periods import Period
from ledger.models import Household, PointRule, Village


@dataclass
class StarScheme:
    """The active categories, in order, and what a star needs in this kind of period."""

    period_kind: str
    categories: list[RuleCategory]
    thresholds: dict[int, int]

    @property
    def missing(self) -> list[RuleCategory]:
        """Active categories with no threshold: no star can be won there, so no ten stars."""
        return [c for c in self.categories if c.id not in self.thresholds]

    @property
    def complete(self) -> bool:
        return bool(self.categories) and not self.missing


def star_scheme(session: Session, period_kind: str) -> StarScheme:
    categories = list(list_categories(session, active_only=True))
    thresholds = dict(
        session.execute(
            select(StarThreshold.category_id, StarThreshold.points)
            .join(RuleCategory)
            .where(StarThreshold.period_kind == period_kind, RuleCategory.active)
        ).all()
    )
    return StarScheme(str(period_kind), categories, thresholds)


def _category_points(deeds: Any) -> Any:
    """Each household's net points per active category: its awards minus its penalties."""
    return (
        select(
            deeds.c.household_id,
            PointRule.category_id,
            func.sum(deeds.c.signed).label("points"),
        )
        .join(PointRule, PointRule.id == deeds.c.rule_id)
        .join(RuleCategory, RuleCategory.id == PointRule.category_id)
        .where(RuleCategory.active)
        .group_by(deeds.c.household_id, PointRule.category_id)
        .subquery("category_points")
    )


def _star_counts(deeds: Any, period_kind: str) -> Any:
    points = _category_points(deeds)
    return (
        select(points.c.household_id, func.count().label("stars"))
        .join(
            StarThreshold,
            and_(
                StarThreshold.category_id == points.c.category_id,
                StarThreshold.period_kind == period_kind,
            ),
        )
        .where(points.c.points >= StarThreshold.points)
        .group_by(points.c.household_id)
        .subquery("star_counts")
    )


@dataclass
class HouseholdStars:
    household_id: int
    head_name: str
    village_code: str
    village_name: str
    points: dict[int, int] = field(default_factory=dict)
    stars: list[int] = field(default_factory=list)

    @property
    def star_count(self) -> int:
        return len(self.stars)


@dataclass
class StarTable:
    period: Period
    village: Village | None
    scheme: StarScheme
    rows: list[HouseholdStars]


def compute_stars(
    session: Session,
    *,
    period: Period,
    tz: ZoneInfo,
    village: Village | None = None,
    household_id: int | None = None,
) -> StarTable:
    """Per household, the net points in each category and the stars they win, most first.

    Households with no categorised deed in the period are left out (they hold no star).
    """
    scheme = star_scheme(session, period.kind)
    deeds = _deeds(session, period, tz, village)
    points = _category_points(deeds)
    stmt = (
        select(
            points.c.household_id,
            Household.head_name,
            Village.code,
            Village.name,
            points.c.category_id,
            points.c.points,
        )
        .join(Household, Household.id == points.c.household_id)
        .join(Village, Village.id == Household.village_id)
        .order_by(points.c.household_id)
    )
    if household_id is not None:
        stmt = stmt.where(points.c.household_id == household_id)
    rows: dict[int, HouseholdStars] = {}
    for hid, head, vcode, vname, category_id, total in session.execute(stmt):
        entry = rows.setdefault(hid, HouseholdStars(hid, head, vcode, vname))
        entry.points[category_id] = int(total)
        needed = scheme.thresholds.get(category_id)
        if needed is not None and int(total) >= needed:
            entry.stars.append(category_id)
    order = {c.id: i for i, c in enumerate(scheme.categories)}
    for entry in rows.values():
        entry.stars.sort(key=order.__getitem__)
    ranked = sorted(rows.values(), key=lambda e: (-e.star_count, e.household_id))
    return StarTable(period, village, scheme, ranked)

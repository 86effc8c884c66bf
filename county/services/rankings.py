"""Rankings: the red list, the black list and the ten-star list, and who may read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Forbidden, ValidationFailed
from county.services.deeds import _deeds, _scores
from county.services.periods import Period
from county.services.stars import StarScheme, _star_counts, star_scheme
from ledger import services as ledger
from ledger.models import Household, TransferKind, Village

MAX_TOP = 500
DEFAULT_VILLAGE_TOP = 10
DEFAULT_COUNTY_TOP = 100


def ranking_scope(session: Session, *, actor: User, village_code: str | None) -> Village | None:
    """The village a ranking covers (None: the whole county), as the actor may see it.

    A cadre sees their own village, whichever village they ask for by omission; the county
    office sees any village or the county; shop staff see no rankings.
    """
    if actor.is_admin:
        return ledger.get_village(session, village_code) if village_code else None
    if actor.role == "cadre" and actor.village_code:
        code = village_code or actor.village_code
        actor.require_village(code)
        return ledger.get_village(session, code)
    raise Forbidden(_l("only the county office and village cadres see rankings"))


@dataclass(frozen=True)
class RankedHousehold:
    rank: int
    household_id: int
    head_name: str
    village_code: str
    village_name: str
    earned: int
    penalised: int
    score: int
    stars: int = 0


@dataclass
class RedList:
    period: Period
    village: Village | None
    top: int
    rows: list[RankedHousehold]


def red_list(
    session: Session,
    *,
    period: Period,
    tz: ZoneInfo,
    village: Village | None = None,
    top: int = DEFAULT_VILLAGE_TOP,
) -> RedList:
    """Households ranked by integrity score (earned minus penalties) within the period.

    Only households with a positive score and no penalty in the period stand on the red
    list: a penalty puts a household on the black list instead. Ties share a rank (1, 2,
    2, 4), and everyone tied at the last place shown is shown.
    """
    if not 1 <= top <= MAX_TOP:
        raise ValidationFailed(errors={"top": [_l("1 to %(most)s", most=MAX_TOP)]})
    scores = _scores(_deeds(session, period, tz, village))
    ranked = (
        select(
            scores.c.household_id,
            scores.c.earned,
            scores.c.penalised,
            scores.c.score,
            func.rank().over(order_by=scores.c.score.desc()).label("rank"),
        )
        .join(Household, Household.id == scores.c.household_id)
        .where(scores.c.penalised == 0, scores.c.score > 0, Household.status == "active")
        .subquery("ranked")
    )
    rows = session.execute(
        select(
            ranked.c.rank,
            ranked.c.household_id,
            Household.head_name,
            Village.code,
            Village.name,
            ranked.c.earned,
            ranked.c.penalised,
            ranked.c.score,
        )
        .join(Household, Household.id == ranked.c.household_id)
        .join(Village, Village.id == Household.village_id)
        .where(ranked.c.rank <= top)
        .order_by(ranked.c.rank, ranked.c.household_id)
    ).all()
    return RedList(period, village, top, [RankedHousehold(*map(_plain, row)) for row in rows])


def _plain(value: Any) -> Any:
    # PostgreSQL sums come back as Decimal; points are integers.
    return int(value) if value is not None and not isinstance(value, str) else value


@dataclass(frozen=True)
class Penalty:
    at: datetime
    points: int
    reason: str


@dataclass
class BlackListEntry:
    household_id: int
    head_name: str
    village_code: str
    village_name: str
    penalised: int
    count: int
    earned: int
    score: int
    penalties: list[Penalty] = field(default_factory=list)


@dataclass
class BlackList:
    period: Period
    village: Village | None
    rows: list[BlackListEntry]


def black_list(
    session: Session, *, period: Period, tz: ZoneInfo, village: Village | None = None
) -> BlackList:
    """Households penalised in the period (corrections aside), most points lost first,
    with each penalty's date, points and reason."""
    deeds = _deeds(session, period, tz, village)
    scores = _scores(deeds)
    penalty_count = (
        select(deeds.c.household_id, func.count().label("n"))
        .where(deeds.c.kind == TransferKind.PENALTY)
        .group_by(deeds.c.household_id)
        .subquery("penalty_count")
    )
    rows = session.execute(
        select(
            scores.c.household_id,
            Household.head_name,
            Village.code,
            Village.name,
            scores.c.penalised,
            penalty_count.c.n,
            scores.c.earned,
            scores.c.score,
        )
        .join(penalty_count, penalty_count.c.household_id == scores.c.household_id)
        .join(Household, Household.id == scores.c.household_id)
        .join(Village, Village.id == Household.village_id)
        .order_by(scores.c.penalised.desc(), scores.c.household_id)
    ).all()
    entries = {row[0]: BlackListEntry(*map(_plain, row)) for row in rows}
    if entries:
        details = session.execute(
            select(deeds.c.household_id, deeds.c.created_at, deeds.c.amount, deeds.c.reason)
            .where(deeds.c.kind == TransferKind.PENALTY)
            .order_by(deeds.c.created_at, deeds.c.transfer_id)
        )
        for household_id, at, amount, reason in details:
            entries[household_id].penalties.append(Penalty(at, int(amount), reason or ""))
    return BlackList(period, village, list(entries.values()))


@dataclass
class TenStarList:
    period: Period
    village: Village | None
    scheme: StarScheme
    rows: list[RankedHousehold]


def ten_star_list(
    session: Session, *, period: Period, tz: ZoneInfo, village: Village | None = None
) -> TenStarList:
    """Households with a star in every active category, ranked by integrity score.

    Like the red list, an honour roll: a household penalised in the period is not on it,
    whatever its stars. Empty while any active category has no threshold for this kind of
    period: its star cannot be won, so nobody has them all (the page says which lack one).
    """
    scheme = star_scheme(session, period.kind)
    if not scheme.complete:
        return TenStarList(period, village, scheme, [])
    deeds = _deeds(session, period, tz, village)
    stars = _star_counts(deeds, period.kind)
    scores = _scores(deeds)
    full = (
        select(
            scores.c.household_id,
            scores.c.earned,
            scores.c.penalised,
            scores.c.score,
            stars.c.stars,
        )
        .join(stars, stars.c.household_id == scores.c.household_id)
        .where(stars.c.stars == len(scheme.categories), scores.c.penalised == 0)
        .subquery("full")
    )
    rows = session.execute(
        select(
            func.rank().over(order_by=full.c.score.desc()),
            full.c.household_id,
            Household.head_name,
            Village.code,
            Village.name,
            full.c.earned,
            full.c.penalised,
            full.c.score,
            full.c.stars,
        )
        .join(Household, Household.id == full.c.household_id)
        .join(Village, Village.id == Household.village_id)
        .order_by(full.c.score.desc(), full.c.household_id)
    ).all()
    return TenStarList(period, village, scheme, [RankedHousehold(*map(_plain, r)) for r in rows])

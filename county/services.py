"""County figures from the ledger: periods, categories, stars, red and black lists, dashboard."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, delete, exists, func, insert, or_, select, text
from sqlalchemy.orm import Session, aliased

from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.ids import is_id
from county.models import PeriodKind, RuleCategory, StarThreshold
from inventory.models import Product, Shop, StockLevel
from ledger import services as ledger
from ledger.models import (
    Account,
    AccountKind,
    Household,
    PointRule,
    Transfer,
    TransferKind,
    Village,
)
from pos.models import Sale, SaleLine, SaleReturn, SaleReturnLine

if TYPE_CHECKING:
    from accounts.auth import User

MAX_TOP = 500
DEFAULT_VILLAGE_TOP = 10
DEFAULT_COUNTY_TOP = 100
MAX_THRESHOLD = 100_000
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")

# --- periods -------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A calendar month, quarter or year of the county's local time."""

    kind: str
    year: int
    number: int = 1

    @property
    def key(self) -> str:
        if self.kind == PeriodKind.MONTH:
            return f"{self.year:04d}-{self.number:02d}"
        if self.kind == PeriodKind.QUARTER:
            return f"{self.year:04d}-Q{self.number}"
        return f"{self.year:04d}"

    @property
    def label(self) -> str:
        # Printed on notices for the village board, so always the Chinese calendar words.
        if self.kind == PeriodKind.MONTH:
            return f"{self.year}年{self.number}月"
        if self.kind == PeriodKind.QUARTER:
            return f"{self.year}年第{self.number}季度"
        return f"{self.year}年"

    @property
    def first_day(self) -> date:
        if self.kind == PeriodKind.MONTH:
            return date(self.year, self.number, 1)
        if self.kind == PeriodKind.QUARTER:
            return date(self.year, 3 * self.number - 2, 1)
        return date(self.year, 1, 1)

    @property
    def end_day(self) -> date:
        """The first day after the period."""
        if self.kind == PeriodKind.MONTH:
            return _add_months(self.first_day, 1)
        if self.kind == PeriodKind.QUARTER:
            return _add_months(self.first_day, 3)
        return date(self.year + 1, 1, 1)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnight of the first day to local midnight after."""
        return day_bounds(self.first_day, self.end_day, tz)

    def previous(self) -> Period:
        if self.kind == PeriodKind.YEAR:
            return Period(self.kind, self.year - 1)
        size = 12 if self.kind == PeriodKind.MONTH else 4
        if self.number == 1:
            return Period(self.kind, self.year - 1, size)
        return Period(self.kind, self.year, self.number - 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def day_bounds(first: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
    return start, datetime.combine(end, time.min, tzinfo=tz).astimezone(UTC)


_PERIOD_RE = re.compile(r"^(\d{4})(?:-(?:(\d{1,2})|[Qq]([1-4])))?$")


def parse_period(text: str | None) -> Period:
    """'2026-11' (month), '2026-Q4' (quarter) or '2026' (year)."""
    match = _PERIOD_RE.match((text or "").strip())
    year = int(match.group(1)) if match else 0
    if not match or not 2000 <= year <= 2999:
        raise ValidationFailed(errors={"period": [_l("use YYYY-MM, YYYY-Q1 to YYYY-Q4, or YYYY")]})
    month, quarter = match.group(2), match.group(3)
    if month is not None:
        if not 1 <= int(month) <= 12:
            raise ValidationFailed(errors={"period": [_l("the month must be 1 to 12")]})
        return Period(PeriodKind.MONTH, year, int(month))
    if quarter is not None:
        return Period(PeriodKind.QUARTER, year, int(quarter))
    return Period(PeriodKind.YEAR, year)


def period_containing(kind: str, day: date) -> Period:
    if kind == PeriodKind.MONTH:
        return Period(kind, day.year, day.month)
    if kind == PeriodKind.QUARTER:
        return Period(kind, day.year, (day.month - 1) // 3 + 1)
    return Period(PeriodKind.YEAR, day.year)


def parse_month(text: str | None) -> Period:
    period = parse_period(text)
    if period.kind != PeriodKind.MONTH:
        raise ValidationFailed(errors={"month": [_l("use YYYY-MM")]})
    return period


# --- categories and thresholds -----------------------------------------------------


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise Forbidden(_l("only the county office may do this"))


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
    _require_admin(actor)
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
    _require_admin(actor)
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
    _require_admin(actor)
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


# --- who may see what ----------------------------------------------------------------


def ranking_scope(session: Session, *, actor: User, village_code: str | None) -> Village | None:
    """The village a ranking covers (None: the whole county), as the actor may see it.

    A cadre sees their own village, whichever village they ask for by omission; the county
    office sees any village or the county; shop staff see no rankings.
    """
    if actor.is_admin:
        return ledger.get_village(session, village_code) if village_code else None
    if actor.role == "cadre" and actor.village_code:
        code = village_code or actor.village_code
        if code != actor.village_code:
            raise Forbidden(_l("outside your village"))
        return ledger.get_village(session, code)
    raise Forbidden(_l("only the county office and village cadres see rankings"))


def dashboard_shop_scope(session: Session, *, actor: User, shop_code: str | None) -> Shop | None:
    """None: the county (admin only); else the shop, for the admin or its own manager."""
    from inventory import services as inventory

    if shop_code is None:
        if not actor.is_admin:
            if actor.role == "manager" and actor.shop_code:
                return inventory.get_shop(session, actor.shop_code)
            raise Forbidden(_l("only the county office sees the county dashboard"))
        return None
    shop = inventory.get_shop(session, shop_code)
    if not actor.may_manage_shop(shop.code):
        raise Forbidden(_l("you may not see shop %(shop_code)s", shop_code=shop_code))
    return shop


# --- deeds: the awards and penalties a period counts --------------------------------


def _system_account_id(session: Session, code: str) -> int:
    return session.scalar(select(Account.id).where(Account.code == code)) or 0


def _without_jit(session: Session) -> None:
    """PostgreSQL's JIT compiles these half-second aggregates for longer than they run
    (over a second at 10 million transfers); switch it off for this transaction only."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _deeds(session: Session, period: Period, tz: ZoneInfo, village: Village | None) -> Any:
    """Awards and penalties posted in the period, each household's, that no correction undid.

    Corrected transfers and their corrections both drop out: a mistaken award or penalty
    never counted, in whichever period it was posted and whenever it was corrected. Awards
    are found as debits of the issuance account and penalties as credits of the penalty
    sink, so the (account, created_at) indexes the ledger already keeps do the range scan.
    """
    _without_jit(session)
    start, end = period.bounds(tz)
    issuance = _system_account_id(session, ledger.ISSUANCE_CODE)
    penalty = _system_account_id(session, ledger.PENALTY_CODE)
    undo = aliased(Transfer)
    stmt = (
        select(
            Transfer.id.label("transfer_id"),
            Household.id.label("household_id"),
            Transfer.kind.label("kind"),
            Transfer.amount.label("amount"),
            case(
                (Transfer.kind == TransferKind.AWARD, Transfer.amount), else_=-Transfer.amount
            ).label("signed"),
            Transfer.rule_id.label("rule_id"),
            Transfer.reason.label("reason"),
            Transfer.created_at.label("created_at"),
        )
        .select_from(Transfer)
        .join(Account, Account.id == Transfer.chain_account_id)
        .join(Household, Household.id == Account.household_id)
        .where(
            Transfer.created_at >= start,
            Transfer.created_at < end,
            or_(
                and_(Transfer.debit_account_id == issuance, Transfer.kind == TransferKind.AWARD),
                and_(Transfer.credit_account_id == penalty, Transfer.kind == TransferKind.PENALTY),
            ),
            ~exists().where(undo.reverses_id == Transfer.id),
        )
    )
    if village is not None:
        stmt = stmt.where(Household.village_id == village.id)
    return stmt.subquery("deeds")


def _scores(deeds: Any) -> Any:
    earned = func.sum(case((deeds.c.kind == TransferKind.AWARD, deeds.c.amount), else_=0))
    penalised = func.sum(case((deeds.c.kind == TransferKind.PENALTY, deeds.c.amount), else_=0))
    return (
        select(
            deeds.c.household_id,
            earned.label("earned"),
            penalised.label("penalised"),
            (earned - penalised).label("score"),
            func.count().label("deeds"),
        )
        .group_by(deeds.c.household_id)
        .subquery("scores")
    )


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


# --- stars ---------------------------------------------------------------------------


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


# --- dashboard -----------------------------------------------------------------------


def local_text(session: Session, column: Any, tz: ZoneInfo, fmt: str) -> Any:
    """A timestamp column as local 'YYYY-MM' or 'YYYY-MM-DD' text, computed in the database."""
    if session.get_bind().dialect.name == "postgresql":
        pg = {"month": "YYYY-MM", "day": "YYYY-MM-DD"}[fmt]
        return func.to_char(func.timezone(tz.key, column), pg)
    # SQLite keeps naive UTC text; the county's zone has had a fixed offset since 1991.
    offset = datetime.now(tz).utcoffset() or timedelta(0)
    sqlite = {"month": "%Y-%m", "day": "%Y-%m-%d"}[fmt]
    return func.strftime(sqlite, column, f"{int(offset.total_seconds() // 60):+d} minutes")


@dataclass(frozen=True)
class MonthFigures:
    month: str
    awarded: int
    penalised: int
    redeemed: int


@dataclass(frozen=True)
class ShopDay:
    shop_code: str
    day: str
    redemptions: int
    points: int


@dataclass(frozen=True)
class GoodsFigure:
    sku: str
    name: str
    qty: int
    points: int


@dataclass(frozen=True)
class StockFigure:
    shop_code: str
    shop_name: str
    products: int
    units: int
    value: int
    low: int


@dataclass(frozen=True)
class LowStock:
    shop_code: str
    sku: str
    name: str
    on_hand: int
    reorder_level: int


@dataclass(frozen=True)
class Dormant:
    household_id: int
    head_name: str
    village_name: str
    balance: int


@dataclass
class Dashboard:
    month: Period
    shop: Shop | None
    months: list[MonthFigures]
    shop_days: list[ShopDay]
    top_goods: list[GoodsFigure]
    stock: list[StockFigure]
    low_stock: list[LowStock]
    never_redeemed_count: int
    never_redeemed: list[Dormant]


def _shop_accounts(session: Session, shop: Shop | None) -> dict[int, str]:
    stmt = select(Account.id, Account.code).where(Account.kind == AccountKind.SHOP)
    if shop is not None:
        stmt = stmt.where(Account.code == ledger.shop_account_code(shop.code))
    return {aid: code.partition(":")[2] for aid, code in session.execute(stmt).all()}


# A day is cached once it ended this long ago: no request is still posting into it.
CLOSE_MARGIN = timedelta(days=1)
# Transfers younger than this may still be uncommitted behind a lower id; the cache's
# watermark stays below them, so they are always checked on the next read.
WATERMARK_MARGIN = timedelta(minutes=10)
COUNTY_SCOPE = "*"

# {(local day 'YYYY-MM-DD', scope): [awarded, penalised, redeemed, redemptions]}
_Totals = dict[tuple[str, str], list[int]]


def _fold_days(session: Session, tz: ZoneInfo, start: datetime, end: datetime) -> _Totals:
    """Per local day in [start, end): the county's awards and penalties (those no correction
    undid; the correction drops out too) under scope "*", and each shop's redemptions (net
    of refunds, each on its own day, and their count) under scope "shop:<code>"."""
    _without_jit(session)
    day = local_text(session, Transfer.created_at, tz, "day")
    totals: _Totals = {}
    issuance = _system_account_id(session, ledger.ISSUANCE_CODE)
    penalty = _system_account_id(session, ledger.PENALTY_CODE)
    undo = aliased(Transfer)
    deeds = session.execute(
        select(day, Transfer.kind, func.sum(Transfer.amount))
        .where(
            Transfer.created_at >= start,
            Transfer.created_at < end,
            or_(
                and_(Transfer.debit_account_id == issuance, Transfer.kind == TransferKind.AWARD),
                and_(Transfer.credit_account_id == penalty, Transfer.kind == TransferKind.PENALTY),
            ),
            ~exists().where(undo.reverses_id == Transfer.id),
        )
        .group_by(day, Transfer.kind)
    )
    for key, kind, total in deeds:
        row = totals.setdefault((_day_key(key), COUNTY_SCOPE), [0, 0, 0, 0])
        row[0 if kind == TransferKind.AWARD else 1] = int(total)
    shops = _shop_accounts(session, None)
    if shops:
        shop_account = case(
            (Transfer.kind == TransferKind.REFUND, Transfer.debit_account_id),
            else_=Transfer.credit_account_id,
        )
        spent = session.execute(
            select(
                day,
                shop_account,
                func.sum(
                    case(
                        (Transfer.kind == TransferKind.REFUND, -Transfer.amount),
                        else_=Transfer.amount,
                    )
                ),
                func.sum(case((Transfer.kind == TransferKind.REDEMPTION, 1), else_=0)),
            )
            .where(
                Transfer.created_at >= start,
                Transfer.created_at < end,
                or_(
                    and_(
                        Transfer.credit_account_id.in_(list(shops)),
                        Transfer.kind == TransferKind.REDEMPTION,
                    ),
                    and_(
                        Transfer.debit_account_id.in_(list(shops)),
                        Transfer.kind == TransferKind.REFUND,
                    ),
                ),
            )
            .group_by(day, shop_account)
        )
        for key, account_id, total, count in spent:
            scope = ledger.shop_account_code(shops[account_id])
            row = totals.setdefault((_day_key(key), scope), [0, 0, 0, 0])
            row[2], row[3] = int(total or 0), int(count or 0)
    return totals


def _day_key(value: Any) -> str:
    return value if isinstance(value, str) else value.strftime("%Y-%m-%d")


def _window(last: Period, months: int) -> list[Period]:
    first = Period(PeriodKind.MONTH, last.year, last.number)
    for _ in range(months - 1):
        first = first.previous()
    window, current = [], first
    for _ in range(months):
        window.append(current)
        after = current.end_day
        current = Period(PeriodKind.MONTH, after.year, after.month)
    return window


def _dirty_days(
    session: Session, tz: ZoneInfo, watermark: int, start: datetime, end: datetime
) -> set[str]:
    """Days in [start, end) that transfers after the watermark touch: posted into them
    late, or correcting one of their transfers. Both scans are primary-key ranges."""
    day = local_text(session, Transfer.created_at, tz, "day")
    late = session.scalars(
        select(day)
        .where(Transfer.id > watermark, Transfer.created_at >= start, Transfer.created_at < end)
        .group_by(day)
    ).all()
    original = aliased(Transfer)
    original_day = local_text(session, original.created_at, tz, "day")
    corrected = session.scalars(
        select(original_day)
        .select_from(Transfer)
        .join(original, original.id == Transfer.reverses_id)
        .where(Transfer.id > watermark)
        .group_by(original_day)
    ).all()
    return {_day_key(d) for d in (*late, *corrected)}


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as [first, end) ranges, so each range is one fold."""
    runs: list[tuple[date, date]] = []
    for d in sorted(days):
        if runs and runs[-1][1] == d:
            runs[-1] = (runs[-1][0], d + timedelta(days=1))
        else:
            runs.append((d, d + timedelta(days=1)))
    return runs


def day_totals(
    session: Session, *, tz: ZoneInfo, first: date, end: date, now: datetime | None = None
) -> _Totals:
    """The ledger's daily figures for [first, end), from the cache where it still holds.

    With `now`, days that ended a day before it come from county_day_totals unless a
    transfer after the cached watermark touches them; the others (open days, days never
    folded, touched days) are folded from the transfers, and the closed ones among them
    are stored (flushed; the caller commits). Without `now`, everything is folded live.
    """
    from county.models import DayTotal

    days = [first + timedelta(days=i) for i in range((end - first).days)]
    totals: _Totals = {}
    if now is None:
        for a, b in _runs(days):
            totals.update(_fold_days(session, tz, *day_bounds(a, b, tz)))
        return totals
    closed = {d for d in days if day_bounds(d, d + timedelta(days=1), tz)[1] <= now - CLOSE_MARGIN}
    # Plain rows, not ORM objects: a year of days is thousands of them.
    stored = session.execute(
        select(
            DayTotal.day,
            DayTotal.scope,
            DayTotal.awarded,
            DayTotal.penalised,
            DayTotal.redeemed,
            DayTotal.redemptions,
            DayTotal.through_transfer_id,
        ).where(DayTotal.tz == tz.key, DayTotal.day >= first, DayTotal.day < end)
    ).all()
    cached = {row.day for row in stored}
    if stored:
        watermark = min(row.through_transfer_id for row in stored)
        for key in _dirty_days(session, tz, watermark, *day_bounds(first, end, tz)):
            cached.discard(date.fromisoformat(key))
    for row in stored:
        if row.day in cached:
            totals[(row.day.isoformat(), row.scope)] = [
                row.awarded,
                row.penalised,
                row.redeemed,
                row.redemptions,
            ]
    live = [d for d in days if d not in cached]
    refold = [d for d in live if d in closed]
    watermark = 0
    if refold:
        # Read the watermark before folding: anything later is checked on the next read.
        watermark = (
            session.scalar(
                select(func.max(Transfer.id)).where(Transfer.created_at < now - WATERMARK_MARGIN)
            )
            or 0
        )
        session.execute(delete(DayTotal).where(DayTotal.tz == tz.key, DayTotal.day.in_(refold)))
    folded: _Totals = {}
    for a, b in _runs(live):
        folded.update(_fold_days(session, tz, *day_bounds(a, b, tz)))
    totals.update(folded)
    if refold:
        # Empty days are stored too (one county row), so they are not folded again.
        wanted = {d.isoformat() for d in refold}
        rows = {key: v for key, v in folded.items() if key[0] in wanted}
        for d in refold:
            rows.setdefault((d.isoformat(), COUNTY_SCOPE), [0, 0, 0, 0])
        session.execute(
            insert(DayTotal),
            [
                {
                    "tz": tz.key,
                    "day": date.fromisoformat(key),
                    "scope": scope,
                    "awarded": v[0],
                    "penalised": v[1],
                    "redeemed": v[2],
                    "redemptions": v[3],
                    "through_transfer_id": watermark,
                    "computed_at": now,
                }
                for (key, scope), v in rows.items()
            ],
        )
    return totals


def monthly_points(
    session: Session,
    *,
    tz: ZoneInfo,
    last: Period,
    months: int = 12,
    shop: Shop | None = None,
    now: datetime | None = None,
) -> list[MonthFigures]:
    """Points awarded, penalised (corrected ones left out) and redeemed net of refunds, per
    local month, for `months` months up to `last`; with a shop, only its redemptions.

    Summed from day_totals: with `now`, closed days come from the cache (see there)."""
    window = _window(last, months)
    totals = day_totals(session, tz=tz, first=window[0].first_day, end=last.end_day, now=now)
    wanted = ledger.shop_account_code(shop.code) if shop is not None else None
    sums: dict[str, list[int]] = {p.key: [0, 0, 0] for p in window}
    for (day, scope), (awarded, penalised, redeemed, _n) in totals.items():
        row = sums[day[:7]]
        if scope == COUNTY_SCOPE:
            if shop is None:
                row[0] += awarded
                row[1] += penalised
        elif wanted is None or scope == wanted:
            row[2] += redeemed
    return [MonthFigures(key, *row) for key, row in sums.items()]


def shop_days(
    session: Session,
    *,
    tz: ZoneInfo,
    month: Period,
    shop: Shop | None = None,
    now: datetime | None = None,
) -> list[ShopDay]:
    """Per shop and local day of the month: redemptions counted, and points net of refunds."""
    totals = day_totals(session, tz=tz, first=month.first_day, end=month.end_day, now=now)
    wanted = ledger.shop_account_code(shop.code) if shop is not None else None
    return sorted(
        (
            ShopDay(scope.partition(":")[2], day, n, redeemed)
            for (day, scope), (_a, _p, redeemed, n) in totals.items()
            if scope != COUNTY_SCOPE and (wanted is None or scope == wanted) and (n or redeemed)
        ),
        key=lambda r: (r.day, r.shop_code),
    )


# {(business day, shop id, product id): [qty, points]}
_Goods = dict[tuple[date, int, int], list[int]]


def _fold_goods(session: Session, first: date, end: date) -> _Goods:
    """Goods sold minus goods returned, per business day, shop and product, in [first, end)."""
    _without_jit(session)
    # Naming every shop lets the (shop_id, business_day) indexes find the days' rows
    # instead of a scan of every sale ever made.
    shop_ids = list(session.scalars(select(Shop.id)))
    sold = (
        select(
            Sale.business_day.label("day"),
            Sale.shop_id.label("shop_id"),
            SaleLine.product_id.label("product_id"),
            SaleLine.qty.label("qty"),
            SaleLine.points.label("points"),
        )
        .join(Sale, Sale.id == SaleLine.sale_id)
        .where(Sale.shop_id.in_(shop_ids), Sale.business_day >= first, Sale.business_day < end)
    )
    back = (
        select(
            SaleReturn.business_day.label("day"),
            SaleReturn.shop_id.label("shop_id"),
            SaleLine.product_id.label("product_id"),
            (-SaleReturnLine.qty).label("qty"),
            (-SaleReturnLine.points).label("points"),
        )
        .join(SaleReturn, SaleReturn.id == SaleReturnLine.return_id)
        .join(SaleLine, SaleLine.id == SaleReturnLine.sale_line_id)
        .where(
            SaleReturn.shop_id.in_(shop_ids),
            SaleReturn.business_day >= first,
            SaleReturn.business_day < end,
        )
    )
    moves = sold.union_all(back).subquery("moves")
    rows = session.execute(
        select(
            moves.c.day,
            moves.c.shop_id,
            moves.c.product_id,
            func.sum(moves.c.qty),
            func.sum(moves.c.points),
        ).group_by(moves.c.day, moves.c.shop_id, moves.c.product_id)
    )
    return {(day, shop_id, pid): [int(q), int(p)] for day, shop_id, pid, q, p in rows}


def _sum_goods(goods: _Goods) -> dict[tuple[int, int], list[int]]:
    out: dict[tuple[int, int], list[int]] = {}
    for (_day, shop_id, pid), (qty, points) in goods.items():
        row = out.setdefault((shop_id, pid), [0, 0])
        row[0] += qty
        row[1] += points
    return out


def goods_days(
    session: Session, *, tz: ZoneInfo, first: date, end: date, now: datetime | None = None
) -> dict[tuple[int, int], list[int]]:
    """Goods per business day in [first, end), closed days from county_goods_days.

    Sales and returns carry their business day and only ever get new ids, so a cached day
    holds until a sale or return after its watermarks is dated in it (a back-dated entry);
    the other days are folded live, and the closed ones stored (flushed; caller commits).
    """
    from county.models import GoodsDay

    days = [first + timedelta(days=i) for i in range((end - first).days)]
    if now is None:
        return _sum_goods(_fold_goods(session, first, end))
    closed = {d for d in days if day_bounds(d, d + timedelta(days=1), tz)[1] <= now - CLOSE_MARGIN}
    in_range = and_(GoodsDay.day >= first, GoodsDay.day < end)
    cached = set(session.scalars(select(GoodsDay.day).where(in_range).group_by(GoodsDay.day)))
    if cached:
        sale_mark, return_mark = session.execute(
            select(func.min(GoodsDay.through_sale_id), func.min(GoodsDay.through_return_id)).where(
                in_range
            )
        ).one()
        touched = set(
            session.scalars(
                select(Sale.business_day)
                .where(Sale.id > sale_mark, Sale.business_day >= first, Sale.business_day < end)
                .group_by(Sale.business_day)
            )
        ) | set(
            session.scalars(
                select(SaleReturn.business_day)
                .where(
                    SaleReturn.id > return_mark,
                    SaleReturn.business_day >= first,
                    SaleReturn.business_day < end,
                )
                .group_by(SaleReturn.business_day)
            )
        )
        cached -= touched
    goods: dict[tuple[int, int], list[int]] = {}
    if cached:
        # Summed in the database: a month of days is tens of thousands of rows.
        for shop_id, pid, qty, points in session.execute(
            select(
                GoodsDay.shop_id,
                GoodsDay.product_id,
                func.sum(GoodsDay.qty),
                func.sum(GoodsDay.points),
            )
            .where(in_range, GoodsDay.day.in_(sorted(cached)), GoodsDay.product_id != 0)
            .group_by(GoodsDay.shop_id, GoodsDay.product_id)
        ):
            goods[(shop_id, pid)] = [int(qty), int(points)]
    live = [d for d in days if d not in cached]
    refold = [d for d in live if d in closed]
    marks = (0, 0)
    if refold:
        # Watermarks first: a sale committed during the fold is checked on the next read.
        cutoff = now - WATERMARK_MARGIN
        marks = (
            session.scalar(select(func.max(Sale.id)).where(Sale.created_at < cutoff)) or 0,
            session.scalar(select(func.max(SaleReturn.id)).where(SaleReturn.created_at < cutoff))
            or 0,
        )
        session.execute(delete(GoodsDay).where(GoodsDay.day.in_(refold)))
    folded: _Goods = {}
    for a, b in _runs(live):
        folded.update(_fold_goods(session, a, b))
    for (_day, shop_id, pid), (qty, points) in folded.items():
        row = goods.setdefault((shop_id, pid), [0, 0])
        row[0] += qty
        row[1] += points
    if refold:
        wanted = set(refold)
        keep = {k: v for k, v in folded.items() if k[0] in wanted}
        # A day with no sales keeps one empty row, so it is not folded again.
        for d in wanted - {k[0] for k in keep}:
            keep[(d, 0, 0)] = [0, 0]
        session.execute(
            insert(GoodsDay),
            [
                {
                    "day": day,
                    "shop_id": shop_id,
                    "product_id": pid,
                    "qty": q,
                    "points": p,
                    "through_sale_id": marks[0],
                    "through_return_id": marks[1],
                    "computed_at": now,
                }
                for (day, shop_id, pid), (q, p) in keep.items()
            ],
        )
    return goods


def top_goods(
    session: Session,
    *,
    month: Period,
    shop: Shop | None = None,
    limit: int = 10,
    tz: ZoneInfo | None = None,
    now: datetime | None = None,
) -> list[GoodsFigure]:
    """Goods by points redeemed in the month (sold minus returned, by business day).

    With `tz` and `now`, closed days come from the cache (see goods_days)."""
    if tz is not None and now is not None:
        goods = goods_days(session, tz=tz, first=month.first_day, end=month.end_day, now=now)
    else:
        goods = _sum_goods(_fold_goods(session, month.first_day, month.end_day))
    per_product: dict[int, list[int]] = {}
    for (shop_id, pid), (qty, points) in goods.items():
        if shop is None or shop_id == shop.id:
            row = per_product.setdefault(pid, [0, 0])
            row[0] += qty
            row[1] += points
    names = dict(
        (pid, (sku, name))
        for pid, sku, name in session.execute(
            select(Product.id, Product.sku, Product.name).where(
                Product.id.in_([pid for pid, (_q, p) in per_product.items() if p > 0])
            )
        )
    )
    ranked = sorted(
        ((names[pid], q, p) for pid, (q, p) in per_product.items() if p > 0 and pid in names),
        key=lambda r: (-r[2], r[0][0]),
    )
    return [GoodsFigure(sku, name, q, p) for (sku, name), q, p in ranked[:limit]]


def stock_figures(session: Session, *, shop: Shop | None = None) -> list[StockFigure]:
    """Per shop: products stocked, units on hand, their value in points, and lines running low."""
    low = and_(StockLevel.reorder_level > 0, StockLevel.on_hand <= StockLevel.reorder_level)
    stmt = (
        select(
            Shop.code,
            Shop.name,
            func.sum(case((StockLevel.on_hand > 0, 1), else_=0)),
            func.coalesce(func.sum(case((StockLevel.on_hand > 0, StockLevel.on_hand), else_=0)), 0),
            func.coalesce(
                func.sum(
                    case(
                        (StockLevel.on_hand > 0, StockLevel.on_hand * Product.points_price),
                        else_=0,
                    )
                ),
                0,
            ),
            func.sum(case((low, 1), else_=0)),
        )
        .select_from(Shop)
        .outerjoin(StockLevel, StockLevel.shop_id == Shop.id)
        .outerjoin(Product, Product.id == StockLevel.product_id)
        .group_by(Shop.code, Shop.name)
        .order_by(Shop.code)
    )
    if shop is not None:
        stmt = stmt.where(Shop.id == shop.id)
    return [
        StockFigure(code, name, int(n or 0), int(u or 0), int(v or 0), int(lo or 0))
        for code, name, n, u, v, lo in session.execute(stmt)
    ]


def low_stock(session: Session, *, shop: Shop | None = None, limit: int = 50) -> list[LowStock]:
    stmt = (
        select(Shop.code, Product.sku, Product.name, StockLevel.on_hand, StockLevel.reorder_level)
        .join(Shop, Shop.id == StockLevel.shop_id)
        .join(Product, Product.id == StockLevel.product_id)
        .where(StockLevel.reorder_level > 0, StockLevel.on_hand <= StockLevel.reorder_level)
        .order_by(StockLevel.on_hand - StockLevel.reorder_level, Shop.code, Product.sku)
        .limit(limit)
    )
    if shop is not None:
        stmt = stmt.where(Shop.id == shop.id)
    return [LowStock(*row) for row in session.execute(stmt)]


def never_redeemed(
    session: Session, *, village: Village | None = None, limit: int = 20
) -> tuple[int, list[Dormant]]:
    """Active households that have never redeemed anything, the richest first, and their count.

    A household whose cached redeemed_total is above zero has redeemed; only the rest are
    checked against the ledger, for the rare one whose every redemption was refunded.
    """
    spent = exists().where(
        Transfer.chain_account_id == Account.id, Transfer.kind == TransferKind.REDEMPTION
    )
    base = (
        select(Household.id, Household.head_name, Village.name, Account.balance)
        .join(Account, Account.household_id == Household.id)
        .join(Village, Village.id == Household.village_id)
        .where(Household.status == "active", Account.redeemed_total == 0, ~spent)
    )
    if village is not None:
        base = base.where(Household.village_id == village.id)
    count = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(Account.balance.desc(), Household.id).limit(limit)).all()
    return int(count), [Dormant(*row) for row in rows]


def dashboard_figures(
    session: Session,
    *,
    tz: ZoneInfo,
    month: Period,
    shop: Shop | None = None,
    now: datetime | None = None,
) -> Dashboard:
    """Everything the dashboard draws, for the county or one shop, each an aggregate query.

    With `now`, closed months' totals are cached (see monthly_points): the caller commits.
    """
    _without_jit(session)
    count, dormant = (0, []) if shop is not None else never_redeemed(session)
    return Dashboard(
        month=month,
        shop=shop,
        months=monthly_points(session, tz=tz, last=month, shop=shop, now=now),
        shop_days=shop_days(session, tz=tz, month=month, shop=shop, now=now),
        top_goods=top_goods(session, month=month, shop=shop, tz=tz, now=now),
        stock=stock_figures(session, shop=shop),
        low_stock=low_stock(session, shop=shop),
        never_redeemed_count=count,
        never_redeemed=dormant,
    )


def current_month(now: datetime, tz: ZoneInfo) -> Period:
    return period_containing(PeriodKind.MONTH, now.astimezone(tz).date())

"""The dashboard's figures: points per month, redemptions per shop and day, goods, stock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Forbidden
from county.models import PeriodKind
from county.services.day_cache import (
    COUNTY_SCOPE,
    _fold_goods,
    _sum_goods,
    day_totals,
    goods_days,
)
from county.services.deeds import _without_jit
from county.services.periods import Period
from inventory import services as inventory
from inventory.models import Product, Shop, StockLevel
from ledger import services as ledger
from ledger.models import Account, Household, Transfer, TransferKind, Village


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


def dashboard_shop_scope(session: Session, *, actor: User, shop_code: str | None) -> Shop | None:
    """None: the county (admin only); else the shop, for the admin or its own manager."""
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

"""The ledger's and the counters' daily totals: folded from the journal, cached per closed day.

The dashboard reads months of figures on every visit; a day that ended long enough ago
is folded once into county_day_totals / county_goods_days and read from there, until a
later transfer, sale or return is found to touch it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, func, insert, or_, select
from sqlalchemy.orm import Session, aliased

from county.models import DayTotal, GoodsDay
from county.services.deeds import _without_jit, counted_deeds
from county.services.periods import day_bounds, local_text
from inventory.models import Shop
from ledger import services as ledger
from ledger.models import Account, AccountKind, Transfer, TransferKind
from pos.models import Sale, SaleLine, SaleReturn, SaleReturnLine


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
    """Per local day in [start, end): the county's awards and penalties (the deeds the
    rankings count, see counted_deeds) under scope "*", and each shop's redemptions (net
    of refunds, each on its own day, and their count) under scope "shop:<code>"."""
    _without_jit(session)
    day = local_text(session, Transfer.created_at, tz, "day", at=start)
    totals: _Totals = {}
    deeds = session.execute(
        select(day, Transfer.kind, func.sum(Transfer.amount))
        .where(counted_deeds(session, start, end))
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


def _dirty_days(
    session: Session, tz: ZoneInfo, watermark: int, start: datetime, end: datetime
) -> set[str]:
    """Days in [start, end) that transfers after the watermark touch: posted into them
    late, or correcting one of their transfers. Both scans are primary-key ranges."""
    day = local_text(session, Transfer.created_at, tz, "day", at=start)
    late = session.scalars(
        select(day)
        .where(Transfer.id > watermark, Transfer.created_at >= start, Transfer.created_at < end)
        .group_by(day)
    ).all()
    original = aliased(Transfer)
    original_day = local_text(session, original.created_at, tz, "day", at=start)
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

"""The shop's day: sales, returns and goods, checked against the ledger's transfers; as CSV."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.spreadsheets import SafeCsvWriter
from inventory import services as inventory
from ledger import services as ledger
from ledger.models import Account, Transfer, TransferKind
from pos.models import Sale, SaleLine, SaleReturn, SaleReturnLine, SaleStatus


@dataclass
class ProductDay:
    sku: str
    name: str
    qty_sold: int = 0
    qty_returned: int = 0
    points: int = 0


@dataclass
class DailyReport:
    shop_code: str
    shop_name: str
    day: date
    sales: int
    voided: int
    points_redeemed: int
    points_refunded: int
    net_points: int
    ledger_redeemed: int
    ledger_refunded: int
    ledger_points: int
    matches_ledger: bool
    by_product: list[ProductDay] = field(default_factory=list)
    by_clerk: list[dict[str, Any]] = field(default_factory=list)
    sale_rows: list[Sale] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    # Returns and voids taken this day, also against sales of earlier days.
    return_rows: list[dict[str, Any]] = field(default_factory=list)
    # Sales a shop node made while its line was down, counted in `sales` by their own time.
    offline_sales: int = 0


def daily_report(
    session: Session, *, actor: User, shop_code: str, day: date, tz: ZoneInfo
) -> DailyReport:
    """The shop's day, and whether the ledger's transfers for that shop and day agree.

    Sales and returns are paired with redemption and refund transfers by sale id; the
    ledger's side is the shop account's transfers whose local date is the day.
    """
    actor.require_shop_manager(shop_code)
    shop = inventory.get_shop(session, shop_code)
    sales = session.scalars(
        select(Sale)
        .where(Sale.shop_id == shop.id, Sale.business_day == day)
        # By the time of sale: the node's offline sales have a series of their own.
        .order_by(Sale.created_at, Sale.id)
    ).all()
    returns = session.scalars(
        select(SaleReturn)
        .where(SaleReturn.shop_id == shop.id, SaleReturn.business_day == day)
        .order_by(SaleReturn.id)
    ).all()

    products: dict[str, ProductDay] = {}
    clerks: dict[int, dict[str, Any]] = {}
    for sale in sales:
        for line in sale.lines:
            item = products.setdefault(line.sku, ProductDay(line.sku, line.name))
            item.qty_sold += line.qty
            item.points += line.points
        clerk = clerks.setdefault(
            sale.clerk_id, {"clerk_id": sale.clerk_id, "sales": 0, "points": 0}
        )
        clerk["sales"] += 1
        clerk["points"] += sale.total_points
    for ret in returns:
        for rline in ret.lines:
            if rline.sku not in products:
                products[rline.sku] = ProductDay(rline.sku, _line_name(session, rline))
            products[rline.sku].qty_returned += rline.qty
            products[rline.sku].points -= rline.points
    usernames = dict(
        session.execute(select(User.id, User.username).where(User.id.in_(list(clerks)))).all()
    )
    for clerk in clerks.values():
        clerk["username"] = usernames.get(clerk["clerk_id"], "")

    # The ledger's view: transfers touching the shop's account created on that local day.
    start, end = _day_bounds(day, tz)
    account_id = session.scalar(
        select(Account.id).where(Account.code == ledger.shop_account_code(shop.code))
    )
    ledger_by_sale: dict[tuple[str, int | None], int] = {}
    if account_id is not None:
        rows = session.execute(
            select(Transfer.kind, Transfer.sale_id, func.sum(Transfer.amount))
            .where(
                Transfer.kind.in_([TransferKind.REDEMPTION, TransferKind.REFUND]),
                (Transfer.credit_account_id == account_id)
                | (Transfer.debit_account_id == account_id),
                Transfer.created_at >= start,
                Transfer.created_at < end,
            )
            .group_by(Transfer.kind, Transfer.sale_id)
        ).all()
        ledger_by_sale = {(str(kind), sale_id): int(total) for kind, sale_id, total in rows}
    ours: dict[tuple[str, int | None], int] = {}
    for sale in sales:
        key = (str(TransferKind.REDEMPTION), sale.id)
        ours[key] = ours.get(key, 0) + sale.total_points
    for ret in returns:
        key = (str(TransferKind.REFUND), ret.sale_id)
        ours[key] = ours.get(key, 0) + ret.refund_points
    receipts = {sale.id: sale.receipt_no for sale in sales}
    differences = []
    for key in sorted(set(ours) | set(ledger_by_sale), key=lambda k: (k[0], k[1] or 0)):
        shop_side, ledger_side = ours.get(key, 0), ledger_by_sale.get(key, 0)
        if shop_side != ledger_side:
            differences.append(
                {
                    "kind": key[0],
                    "sale_id": key[1],
                    "receipt_no": receipts.get(key[1]) if key[1] is not None else None,
                    "shop_points": shop_side,
                    "ledger_points": ledger_side,
                }
            )
    redeemed = sum(sale.total_points for sale in sales)
    refunded = sum(ret.refund_points for ret in returns)
    ledger_redeemed = sum(v for (k, _), v in ledger_by_sale.items() if k == TransferKind.REDEMPTION)
    ledger_refunded = sum(v for (k, _), v in ledger_by_sale.items() if k == TransferKind.REFUND)
    return DailyReport(
        shop_code=shop.code,
        shop_name=shop.name,
        day=day,
        sales=len(sales),
        voided=sum(1 for sale in sales if sale.status == SaleStatus.VOIDED),
        offline_sales=sum(1 for sale in sales if sale.offline),
        points_redeemed=redeemed,
        points_refunded=refunded,
        net_points=redeemed - refunded,
        ledger_redeemed=ledger_redeemed,
        ledger_refunded=ledger_refunded,
        ledger_points=ledger_redeemed - ledger_refunded,
        matches_ledger=not differences,
        by_product=sorted(products.values(), key=lambda p: p.sku),
        by_clerk=sorted(clerks.values(), key=lambda c: c["username"]),
        sale_rows=list(sales),
        differences=differences,
        return_rows=_return_rows(session, returns),
    )


def _return_rows(session: Session, returns: Sequence[SaleReturn]) -> list[dict[str, Any]]:
    sale_ids = {ret.sale_id for ret in returns}
    found = session.execute(select(Sale.id, Sale.receipt_no).where(Sale.id.in_(sale_ids)))
    receipts_of = dict(found.all()) if sale_ids else {}
    return [
        {
            "sale_id": ret.sale_id,
            "receipt_no": receipts_of.get(ret.sale_id, ""),
            "kind": ret.kind,
            "refund_points": ret.refund_points,
            "reason": ret.reason,
            "actor_id": ret.actor_id,
            "created_at": ret.created_at,
        }
        for ret in returns
    ]


def _line_name(session: Session, rline: SaleReturnLine) -> str:
    line = session.get(SaleLine, rline.sale_line_id)
    return line.name if line is not None else rline.sku


def _day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def daily_report_csv(report: DailyReport) -> str:
    """The day as a spreadsheet: a summary, then goods by product, then every sale."""
    out = io.StringIO()
    # Product and shop names are typed by people: none may run as a spreadsheet formula.
    writer = SafeCsvWriter(out)
    writer.writerow([str(_l("Shop")), report.shop_code, report.shop_name])
    writer.writerow([str(_l("Date")), report.day.isoformat()])
    writer.writerow([str(_l("Sales")), report.sales])
    writer.writerow([str(_l("Offline sales")), report.offline_sales])
    writer.writerow([str(_l("Points redeemed")), report.points_redeemed])
    writer.writerow([str(_l("Points refunded")), report.points_refunded])
    writer.writerow([str(_l("Ledger points")), report.ledger_points])
    writer.writerow([str(_l("Matches the ledger")), "yes" if report.matches_ledger else "no"])
    writer.writerow([])
    writer.writerow(["sku", "name", "qty_sold", "qty_returned", "points"])
    for item in report.by_product:
        writer.writerow([item.sku, item.name, item.qty_sold, item.qty_returned, item.points])
    writer.writerow([])
    writer.writerow(["receipt_no", "household_id", "clerk_id", "status", "total_points"])
    for sale in report.sale_rows:
        writer.writerow(
            [sale.receipt_no, sale.household_id, sale.clerk_id, sale.status, sale.total_points]
        )
    if report.differences:
        writer.writerow([])
        writer.writerow(["kind", "sale_id", "receipt_no", "shop_points", "ledger_points"])
        for diff in report.differences:
            writer.writerow(
                [
                    diff["kind"],
                    diff["sale_id"],
                    diff["receipt_no"],
                    diff["shop_points"],
                    diff["ledger_points"],
                ]
            )
    # A byte-order mark, so Excel (what the office opens it in) reads the Chinese as UTF-8.
    return "\ufeff" + out.getvalue()

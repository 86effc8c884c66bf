"""Spreadsheets for cadres and managers: CSV (UTF-8 with BOM) and XLSX, Chinese headers.

The column headers are the files' format, in Chinese whatever the screen language, like the
printed notice: a cadre's spreadsheet, formulas and the office's templates rely on them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, send_file
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session, aliased

from accounts.auth import User
from core.spreadsheets import formula_safe
from county.services import BlackList, Period, RedList, local_text
from inventory.models import Product, Shop, StockLevel, StockMovement
from ledger import services as ledger
from ledger.models import Account, Household, Transfer, TransferKind, Village
from pos.models import Sale, SaleReturn, SaleStatus

KIND_NAMES = {
    "award": "奖励",
    "penalty": "扣分",
    "redemption": "兑换",
    "refund": "退还",
    "correction": "更正",
}
MOVEMENT_NAMES = {
    "receipt": "入库",
    "sale": "销售",
    "return": "退货",
    "adjustment": "调整",
    "count": "盘点",
    "transfer_in": "调入",
    "transfer_out": "调出",
}
STATUS_NAMES = {"active": "正常"}


@dataclass
class Table:
    """One sheet: a title (also the file's name), Chinese headers and rows of plain values."""

    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Any]]
    widths: Sequence[int] = ()


def to_csv(table: Table) -> bytes:
    """UTF-8 with a BOM and CRLF line ends: what Excel and WPS open as Chinese text."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow(["" if v is None else _text(formula_safe(v)) for v in row])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "是" if value else "否"
    return value


def to_xlsx(table: Table) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(table.title))
    sheet.freeze_panes = "A2"
    for i, width in enumerate(table.widths or [14] * len(table.headers)):
        sheet.column_dimensions[chr(ord("A") + i)].width = width
    bold, fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="9B1C1C")
    header = []
    for name in table.headers:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font, cell.fill = bold, fill
        header.append(cell)
    sheet.append(header)
    for row in table.rows:
        sheet.append([_xlsx_value(v) for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # Excel has no time zones; the values are already the county's local time.
        return value.replace(tzinfo=None)
    if isinstance(value, bool):
        return "是" if value else "否"
    return formula_safe(value)


def _sheet_title(title: str) -> str:
    for bad in "[]:*?/\\":
        title = title.replace(bad, "-")
    return title[:31] or "Sheet"


def send_table(table: Table, fmt: str) -> Response:
    if fmt == "csv":
        data, mimetype = to_csv(table), "text/csv; charset=utf-8"
    else:
        data = to_xlsx(table)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = send_file(
        io.BytesIO(data),
        mimetype=mimetype,
        as_attachment=True,
        download_name=f"{table.title}.{fmt}",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the tables ----------------------------------------------------------------------


def households_table(session: Session, *, village: Village | None) -> Table:
    """Every household with its balance and totals, one query streamed in batches."""
    stmt = (
        select(
            Household.id,
            Village.name,
            Household.head_name,
            Household.address,
            Account.balance,
            Account.earned_total,
            Account.penalty_total,
            Account.earned_total - Account.penalty_total,
            Account.redeemed_total,
            Household.status,
        )
        .join(Village, Village.id == Household.village_id)
        .join(Account, Account.household_id == Household.id)
        .order_by(Village.code, Household.id)
        .execution_options(yield_per=5000)
    )
    if village is not None:
        stmt = stmt.where(Household.village_id == village.id)

    def rows() -> Iterable[Sequence[Any]]:
        for row in session.execute(stmt):
            *values, status = row
            yield [*values, STATUS_NAMES.get(status, status)]

    name = village.name if village else "全县"
    return Table(
        f"{name}-家庭积分",
        [
            "户号",
            "村",
            "户主",
            "地址",
            "可用积分",
            "累计获得",
            "累计扣分",
            "诚信积分",
            "累计兑换",
            "状态",
        ],
        rows(),
        [8, 12, 12, 28, 10, 10, 10, 10, 10, 8],
    )


def statement_table(session: Session, *, household: Household, tz: ZoneInfo) -> Table:
    """The household's whole integrity file, oldest first by time, the balance running with it.

    Ordered by when each entry happened, not by id (an offline sale is posted after later
    entries), and the balance is summed in that order, so the column never jumps.
    """
    account_id = household.account.id
    other = aliased(Account)
    stmt = (
        select(
            Transfer.created_at,
            Transfer.kind,
            case(
                (Transfer.credit_account_id == account_id, Transfer.amount), else_=-Transfer.amount
            ),
            Transfer.reason,
            other.kind,
            other.code,
            Transfer.sale_id,
            Transfer.id,
        )
        .join(
            other,
            other.id
            == case(
                (Transfer.debit_account_id == account_id, Transfer.credit_account_id),
                else_=Transfer.debit_account_id,
            ),
        )
        .where(Transfer.chain_account_id == account_id)
        .order_by(Transfer.created_at, Transfer.id)
    )

    def rows() -> Iterable[Sequence[Any]]:
        balance = 0
        for (
            at,
            kind,
            points,
            reason,
            other_kind,
            other_code,
            sale_id,
            tid,
        ) in session.execute(stmt):
            shop = other_code.partition(":")[2] if other_kind == "shop" else ""
            balance += points
            yield [
                at.astimezone(tz),
                KIND_NAMES.get(kind, kind),
                points,
                balance,
                reason or "",
                shop,
                sale_id,
                tid,
            ]

    return Table(
        f"{household.head_name}-{household.id}-积分明细",
        ["时间", "类型", "积分", "结余", "事由", "超市", "销售单号", "流水号"],
        rows(),
        [20, 8, 8, 8, 30, 10, 10, 10],
    )


def rankings_table(red: RedList, black: BlackList, *, tz: ZoneInfo) -> Table:
    def rows() -> Iterable[Sequence[Any]]:
        for r in red.rows:
            yield [
                "红榜",
                r.rank,
                r.household_id,
                r.head_name,
                r.village_name,
                r.earned,
                r.penalised,
                r.score,
                "",
            ]
        for n, e in enumerate(black.rows, start=1):
            reasons = "；".join(
                f"{p.at.astimezone(tz):%m-%d} {p.reason}（-{p.points}）" for p in e.penalties
            )
            yield [
                "黑榜",
                n,
                e.household_id,
                e.head_name,
                e.village_name,
                e.earned,
                e.penalised,
                e.score,
                reasons,
            ]

    place = red.village.name if red.village is not None else "全县"
    return Table(
        f"{place}-{red.period.key}-红黑榜",
        ["榜单", "名次", "户号", "户主", "村", "得分", "扣分", "诚信积分", "扣分事由"],
        rows(),
        [8, 6, 8, 12, 12, 8, 8, 10, 50],
    )


def shop_month_table(session: Session, *, shop: Shop, month: Period, tz: ZoneInfo) -> Table:
    """The shop's daily reports for a month, one row a day: three grouped queries."""
    first, end = month.first_day, month.end_day
    sales = {
        day: (int(n), int(voided or 0), int(points or 0))
        for day, n, voided, points in session.execute(
            select(
                Sale.business_day,
                func.count(),
                func.sum(case((Sale.status == SaleStatus.VOIDED, 1), else_=0)),
                func.sum(Sale.total_points),
            )
            .where(Sale.shop_id == shop.id, Sale.business_day >= first, Sale.business_day < end)
            .group_by(Sale.business_day)
        )
    }
    refunds = {
        day: int(points or 0)
        for day, points in session.execute(
            select(SaleReturn.business_day, func.sum(SaleReturn.refund_points))
            .where(
                SaleReturn.shop_id == shop.id,
                SaleReturn.business_day >= first,
                SaleReturn.business_day < end,
            )
            .group_by(SaleReturn.business_day)
        )
    }
    account_id = session.scalar(
        select(Account.id).where(Account.code == ledger.shop_account_code(shop.code))
    )
    ledger_net: dict[str, int] = {}
    if account_id is not None:
        start, stop = month.bounds(tz)
        day = local_text(session, Transfer.created_at, tz, "day", at=start)
        for key, points in session.execute(
            select(
                day,
                func.sum(
                    case(
                        (Transfer.kind == TransferKind.REFUND, -Transfer.amount),
                        else_=Transfer.amount,
                    )
                ),
            )
            .where(
                Transfer.created_at >= start,
                Transfer.created_at < stop,
                or_(
                    (Transfer.credit_account_id == account_id)
                    & (Transfer.kind == TransferKind.REDEMPTION),
                    (Transfer.debit_account_id == account_id)
                    & (Transfer.kind == TransferKind.REFUND),
                ),
            )
            .group_by(day)
        ):
            ledger_net[key] = int(points or 0)

    def rows() -> Iterable[Sequence[Any]]:
        days = sorted(set(sales) | set(refunds) | {date.fromisoformat(k) for k in ledger_net})
        for d in days:
            n, voided, redeemed = sales.get(d, (0, 0, 0))
            refunded = refunds.get(d, 0)
            ledger_points = ledger_net.get(d.isoformat(), 0)
            yield [
                d.isoformat(),
                n,
                voided,
                redeemed,
                refunded,
                redeemed - refunded,
                ledger_points,
                redeemed - refunded == ledger_points,
            ]

    return Table(
        f"{shop.name}-{month.key}-日报",
        [
            "日期",
            "销售笔数",
            "作废笔数",
            "兑换积分",
            "退还积分",
            "净兑换积分",
            "台账净积分",
            "与台账一致",
        ],
        rows(),
        [12, 10, 10, 10, 10, 12, 12, 12],
    )


def stock_table(session: Session, *, shop: Shop) -> Table:
    stmt = (
        select(
            Product.sku,
            Product.name,
            Product.unit,
            Product.category,
            Product.points_price,
            StockLevel.on_hand,
            StockLevel.reorder_level,
            StockLevel.on_hand * Product.points_price,
        )
        .join(Product, Product.id == StockLevel.product_id)
        .where(StockLevel.shop_id == shop.id)
        .order_by(Product.sku)
    )

    def rows() -> Iterable[Sequence[Any]]:
        for *values, reorder, value in session.execute(stmt):
            on_hand = values[-1]
            yield [*values, reorder, value, reorder > 0 and on_hand <= reorder]

    return Table(
        f"{shop.name}-库存",
        [
            "商品编码",
            "商品名称",
            "单位",
            "分类",
            "积分单价",
            "库存",
            "补货线",
            "库存积分值",
            "需补货",
        ],
        rows(),
        [14, 20, 6, 10, 10, 8, 8, 12, 8],
    )


def movements_table(session: Session, *, shop: Shop, month: Period, tz: ZoneInfo) -> Table:
    """A month of the shop's journal by time; each goods' stock runs on from the month before.

    By time, not id (an offline sale is journalled after later deliveries), and the stock
    column summed in that order, so it never jumps.
    """
    start, end = month.bounds(tz)
    before_month = {
        product_id: int(total or 0)
        for product_id, total in session.execute(
            select(StockMovement.product_id, func.sum(StockMovement.quantity))
            .where(StockMovement.shop_id == shop.id, StockMovement.created_at < start)
            .group_by(StockMovement.product_id)
        )
    }
    stmt = (
        select(
            StockMovement.created_at,
            Product.sku,
            Product.name,
            StockMovement.kind,
            StockMovement.quantity,
            StockMovement.product_id,
            StockMovement.reference,
            StockMovement.reason,
            User.username,
        )
        .join(Product, Product.id == StockMovement.product_id)
        .outerjoin(User, User.id == StockMovement.actor_id)
        .where(
            StockMovement.shop_id == shop.id,
            StockMovement.created_at >= start,
            StockMovement.created_at < end,
        )
        .order_by(StockMovement.created_at, StockMovement.id)
        .execution_options(yield_per=5000)
    )

    def rows() -> Iterable[Sequence[Any]]:
        stock = dict(before_month)
        for at, sku, name, kind, qty, product_id, reference, reason, username in session.execute(
            stmt
        ):
            after = stock[product_id] = stock.get(product_id, 0) + qty
            yield [
                at.astimezone(tz),
                sku,
                name,
                MOVEMENT_NAMES.get(kind, kind),
                qty,
                after,
                reference or "",
                reason or "",
                username or "",
            ]

    return Table(
        f"{shop.name}-{month.key}-出入库",
        ["时间", "商品编码", "商品名称", "类型", "数量", "结存", "单据号", "原因", "操作人"],
        rows(),
        [20, 14, 20, 8, 8, 8, 18, 20, 12],
    )

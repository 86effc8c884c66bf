"""A sale's receipt and the day's report as plain data for pos.receipts, and rendered from it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import NotFound
from core.ids import is_id
from inventory.models import Shop
from ledger import services as ledger
from member_cards.models import MemberCard
from pos.models import Sale, SaleStatus
from pos.receipts import escpos
from pos.receipts.layout import (
    PAPER,
    ReceiptData,
    ReceiptLine,
    ReceiptReturn,
    ReportClerk,
    ReportData,
    ReportDifference,
    ReportProduct,
    layout_daily_report,
    layout_receipt,
    render_text,
)
from pos.services.history import get_sale
from pos.services.reports import DailyReport


def receipt_data(session: Session, sale: Sale, *, tz: ZoneInfo, copy: bool) -> ReceiptData:
    """What a sale's receipt prints, gathered from the committed sale and resolved to text."""
    shop = session.get(Shop, sale.shop_id)
    household = ledger.get_household(session, sale.household_id)
    clerk = session.get(User, sale.clerk_id)
    card = session.get(MemberCard, sale.card_id) if sale.card_id is not None else None
    return ReceiptData(
        shop_name=shop.name if shop else sale.shop_code,
        at=sale.created_at.astimezone(tz),
        receipt_no=sale.receipt_no,
        clerk=clerk.username if clerk else "",
        head_name=household.head_name,
        # The last four of the serial tell the household which card it was; no more is needed.
        card_last4=card.serial[-4:] if card else None,
        lines=tuple(
            ReceiptLine(line.name, line.qty, line.points_each, line.points) for line in sale.lines
        ),
        total=sale.total_points,
        # The sale took exactly its total: the balance before is the balance after plus it.
        balance_before=sale.balance_after + sale.total_points,
        balance_after=sale.balance_after,
        returns=tuple(
            ReceiptReturn(str(ret.kind), ret.reason, ret.refund_points) for ret in sale.returns
        ),
        voided=sale.status == SaleStatus.VOIDED,
        copy=copy,
    )


def _receipt_sale(session: Session, actor: User | None, sale_id: int) -> Sale:
    if actor is not None:
        return get_sale(session, actor=actor, sale_id=sale_id)
    # No actor: the shop's own printing, after the sale was authorized.
    sale = session.get(Sale, sale_id) if is_id(sale_id) else None
    if sale is None:
        raise NotFound(_l("no sale %(sale_id)s", sale_id=sale_id))
    return sale


def sale_receipt(
    session: Session, *, actor: User, sale_id: int, tz: ZoneInfo, copy: bool, width: int
) -> str:
    """A sale's receipt as text (the printer's layout); a reprint is marked as a copy."""
    sale = get_sale(session, actor=actor, sale_id=sale_id)
    data = receipt_data(session, sale, tz=tz, copy=copy)
    return render_text(layout_receipt(data, columns=width))


def sale_receipt_escpos(
    session: Session,
    *,
    actor: User | None,
    sale_id: int,
    tz: ZoneInfo,
    copy: bool,
    paper_mm: int,
    mode: str,
    profile: str | None = None,
    font_path: str | None = None,
) -> bytes:
    """The exact ESC/POS bytes of a sale's receipt, in the printer's text or image mode."""
    sale = _receipt_sale(session, actor, sale_id)
    columns, _dots = PAPER[paper_mm]
    lines = layout_receipt(receipt_data(session, sale, tz=tz, copy=copy), columns=columns)
    return escpos.render_escpos(
        lines, paper_mm=paper_mm, mode=mode, profile=profile, font_path=font_path
    )


def sale_receipt_png(
    session: Session,
    *,
    actor: User | None,
    sale_id: int,
    tz: ZoneInfo,
    copy: bool,
    paper_mm: int,
    font_path: str | None = None,
) -> bytes:
    """The receipt as image mode prints it, as a PNG for the screen."""
    sale = _receipt_sale(session, actor, sale_id)
    columns, _dots = PAPER[paper_mm]
    lines = layout_receipt(receipt_data(session, sale, tz=tz, copy=copy), columns=columns)
    return escpos.render_png(lines, paper_mm=paper_mm, font_path=font_path)


def report_print_data(report: DailyReport) -> ReportData:
    """What the day's report prints, taken from the report the page and the API show."""
    return ReportData(
        shop_name=report.shop_name,
        shop_code=report.shop_code,
        day=report.day,
        sales=report.sales,
        voided=report.voided,
        points_redeemed=report.points_redeemed,
        points_refunded=report.points_refunded,
        net_points=report.net_points,
        ledger_points=report.ledger_points,
        matches_ledger=report.matches_ledger,
        products=tuple(
            ReportProduct(item.name, item.qty_sold, item.qty_returned, item.points)
            for item in report.by_product
        ),
        clerks=tuple(
            ReportClerk(str(clerk.get("username", "")), clerk["sales"], clerk["points"])
            for clerk in report.by_clerk
        ),
        differences=tuple(
            # A difference is best named by its receipt; a refund without a sale, by its kind.
            ReportDifference(
                str(diff.get("receipt_no") or diff.get("sale_id") or diff.get("kind", "")),
                diff["shop_points"],
                diff["ledger_points"],
            )
            for diff in report.differences
        ),
    )


def daily_report_escpos(
    report: DailyReport,
    *,
    paper_mm: int,
    mode: str,
    profile: str | None = None,
    font_path: str | None = None,
) -> bytes:
    """The exact ESC/POS bytes of the day's report on the shop's receipt printer."""
    columns, _dots = PAPER[paper_mm]
    lines = layout_daily_report(report_print_data(report), columns=columns)
    return escpos.render_escpos(
        lines, paper_mm=paper_mm, mode=mode, profile=profile, font_path=font_path
    )

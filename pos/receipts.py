"""Receipt text layout for 58 mm and 80 mm printers: CJK characters take two columns."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from pos.models import Sale

WIDTH_58MM = 32
WIDTH_80MM = 48


@dataclass(frozen=True)
class ReceiptHeader:
    shop_name: str
    head_name: str
    clerk: str


def columns(text: str) -> int:
    # Wide and full-width characters fill two cells on every thermal printer's Chinese font.
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _row(left: str, right: str, width: int) -> str:
    gap = width - columns(left) - columns(right)
    return left + " " * max(gap, 1) + right


def _center(text: str, width: int) -> str:
    return " " * max((width - columns(text)) // 2, 0) + text


def receipt_text(
    sale: Sale, header: ReceiptHeader, *, tz: ZoneInfo, copy: bool = False, width: int = WIDTH_58MM
) -> str:
    """The receipt as the printer prints it; a reprint says it is a copy."""
    at: datetime = sale.created_at.astimezone(tz)
    rule = "-" * width
    out = [_center(header.shop_name, width)]
    if copy:
        out.append(_center(str(_l("*** COPY ***")), width))
    out += [
        f"{_l('Receipt')}: {sale.receipt_no}",
        f"{_l('Time')}: {at:%Y-%m-%d %H:%M}",
        f"{_l('Household')}: {header.head_name}",
        f"{_l('Clerk')}: {header.clerk}",
        rule,
    ]
    for line in sale.lines:
        out.append(line.name)
        out.append(_row(f"  {line.qty} x {line.points_each}", str(line.points), width))
    out.append(rule)
    out.append(_row(str(_l("Total points")), str(sale.total_points), width))
    out.append(_row(str(_l("Balance now")), str(sale.balance_after), width))
    for ret in sale.returns:
        label = _l("Voided") if ret.kind == "void" else _l("Returned")
        out.append(_row(f"{label} ({ret.reason[:10]})", f"+{ret.refund_points}", width))
    if sale.status == "voided":
        out.append(_center(str(_l("*** VOIDED ***")), width))
    out.append("")
    return "\n".join(out)

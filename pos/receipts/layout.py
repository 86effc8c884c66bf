"""Receipts and the day's report as printable lines, measured in the printer's GBK columns.

Pure: it takes plain data (ReceiptData, ReportData) that the counter's services build, and
knows nothing of the database or of printer bytes (pos.receipts.escpos turns lines into those).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from flask_babel import lazy_gettext as _l

# Paper width in mm -> (columns of the printer's 12x24 font, printable dots at 203 dpi).
PAPER: dict[int, tuple[int, int]] = {58: (32, 384), 80: (48, 576)}
WIDTH_58MM = PAPER[58][0]
WIDTH_80MM = PAPER[80][0]
# A product name takes at most this many lines; the rest is cut with an ellipsis.
NAME_LINES = 3
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class PrintLine:
    """One printed line: text padded to the paper's width, or a QR code when `qr` is set.

    A `double` line is printed at twice the width and height, so its text fills half the
    columns. Every text line fills its columns exactly (see `cells`).
    """

    text: str = ""
    bold: bool = False
    double: bool = False
    qr: str | None = None

    @property
    def cells(self) -> int:
        """Columns the line takes on paper."""
        return gbk_columns(self.text) * (2 if self.double else 1)


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    name: str
    qty: int
    points_each: int
    points: int


@dataclass(frozen=True, slots=True)
class ReceiptReturn:
    """Goods brought back later against the sale (kind "return"), or the sale voided ("void")."""

    kind: str
    reason: str
    points: int


@dataclass(frozen=True)
class ReceiptData:
    """Everything a receipt prints, already resolved: no database, no time zone left to apply."""

    shop_name: str
    at: datetime  # local time of the sale
    receipt_no: str
    clerk: str
    head_name: str
    card_last4: str | None
    lines: tuple[ReceiptLine, ...]
    total: int
    balance_before: int
    balance_after: int
    returns: tuple[ReceiptReturn, ...] = ()
    voided: bool = False
    copy: bool = False


@dataclass(frozen=True, slots=True)
class ReportProduct:
    name: str
    qty_sold: int
    qty_returned: int
    points: int


@dataclass(frozen=True, slots=True)
class ReportClerk:
    username: str
    sales: int
    points: int


@dataclass(frozen=True, slots=True)
class ReportDifference:
    """One sale or return on which the shop and the ledger disagree, by what names it best."""

    label: str
    shop_points: int
    ledger_points: int


@dataclass(frozen=True)
class ReportData:
    """What the day's report prints, already resolved (see pos.services.report_print_data)."""

    shop_name: str
    shop_code: str
    day: date
    sales: int
    voided: int
    points_redeemed: int
    points_refunded: int
    net_points: int
    ledger_points: int
    matches_ledger: bool
    products: tuple[ReportProduct, ...] = ()
    clerks: tuple[ReportClerk, ...] = ()
    differences: tuple[ReportDifference, ...] = ()


# --- Measuring: the printer's Chinese mode prints one byte as one column, two as two.


@lru_cache(maxsize=8192)
def char_columns(ch: str) -> int:
    """Columns one (clean) character takes: its GBK byte length.

    A character GBK lacks (䶮, 𠮷, an emoji) prints as a GB18030 printer's full-width
    character or in a small image of its line (pos.receipts.escpos); either way it takes the
    columns its East Asian width says.
    """
    if ch < "\x80":
        return 1
    try:
        return len(ch.encode("gbk"))
    except UnicodeEncodeError:
        return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def gbk_columns(text: str) -> int:
    """Columns `text` takes in the printer's Chinese mode: GBK bytes, not len() nor wcwidth."""
    try:
        return len(text.encode("gbk"))
    except UnicodeEncodeError:
        return sum(char_columns(ch) for ch in text)


def _variation_selector(ch: str) -> bool:
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def clean(text: object) -> str:
    """Printable text only: control characters would be commands to the printer.

    Line breaks and other spacing become a space; format characters and variation selectors
    (hints without a column of their own) vanish; a lone surrogate, which no encoder takes,
    becomes U+FFFD. Private-use and unassigned code points stay: they print as images of
    their line, drawn by a font that has them or as their code.
    """
    value = str(text)
    if value.isprintable() and not any(_variation_selector(ch) for ch in value):
        return value
    out = []
    for ch in value:
        if _variation_selector(ch):
            continue
        if ch.isprintable():
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        if ch == "\u3000" or category in ("Co", "Cn"):
            out.append(ch)
        elif category in ("Cc", "Zs", "Zl", "Zp"):
            out.append(" ")
        else:
            out.append("\ufffd")
    return "".join(out)


def fit(text: str, width: int) -> str:
    """`text` cut to `width` columns, ending in an ellipsis when something was cut."""
    if gbk_columns(text) <= width:
        return text
    room = width - char_columns(ELLIPSIS)
    out, used = [], 0
    for ch in text:
        w = char_columns(ch)
        if used + w > room:
            break
        out.append(ch)
        used += w
    return "".join(out).rstrip() + ELLIPSIS if room > 0 else ""


def wrap(text: str, width: int, *, max_lines: int | None = None) -> list[str]:
    """`text` in lines of at most `width` columns, never splitting a double-byte character.

    A break falls at the last space when there is one in the line's second half (words of
    Latin script stay whole); Chinese breaks anywhere. The last of `max_lines` lines ends in
    an ellipsis when text remains.
    """
    text = text.strip()
    lines: list[str] = []
    while text:
        if gbk_columns(text) <= width:
            lines.append(text)
            break
        if max_lines is not None and len(lines) == max_lines - 1:
            lines.append(fit(text, width))
            break
        used, cut = 0, 0
        for i, ch in enumerate(text):
            used += char_columns(ch)
            if used > width:
                cut = i
                break
        space = text.rfind(" ", 0, cut + 1)
        if space > cut // 2:
            cut = space
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return lines or [""]


def rjust(text: str, width: int) -> str:
    """`text` right-aligned in `width` columns; never cut (figures must print whole)."""
    return " " * max(width - gbk_columns(text), 0) + text


def pad(text: str, width: int, align: str = "left") -> str:
    """`text` filled with spaces to exactly `width` columns (cut first if longer)."""
    text = fit(text, width)
    gap = width - gbk_columns(text)
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    if align == "right":
        return " " * gap + text
    return text + " " * gap


def row(left: str, right: str, width: int) -> str:
    """`left` and `right` on one line, `right` ending at the last column; `left` gives way."""
    right = fit(right, width)
    room = width - gbk_columns(right) - 1
    left = fit(left, room) if room > 0 else ""
    return left + " " * (width - gbk_columns(left) - gbk_columns(right)) + right


class _Sheet:
    """Collects lines of one paper width."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.lines: list[PrintLine] = []

    def text(self, text: str, *, bold: bool = False, align: str = "left") -> None:
        self.lines.append(PrintLine(pad(text, self.columns, align), bold=bold))

    def title(self, text: str) -> None:
        # Double size: half the columns, and a name too long for them wraps rather than cut.
        half = self.columns // 2
        for part in wrap(text, half, max_lines=2):
            self.lines.append(PrintLine(pad(part, half, "center"), bold=True, double=True))

    def row(self, left: str, right: str, *, bold: bool = False) -> None:
        """`left` and `right` on one line; when too long, `left` wraps and `right` follows.

        Nothing is cut: the right side is a receipt number, a name or a figure.
        """
        width = self.columns
        if gbk_columns(left) + 1 + gbk_columns(right) <= width:
            self.lines.append(PrintLine(row(left, right, width), bold=bold))
            return
        lefts = wrap(left, width)
        last = lefts.pop()
        for part in lefts:
            self.text(part, bold=bold)
        if gbk_columns(last) + 1 + gbk_columns(right) <= width:
            self.lines.append(PrintLine(row(last, right, width), bold=bold))
            return
        self.text(last, bold=bold)
        for part in wrap(right, width):
            self.text(part, bold=bold, align="right")

    def rule(self, char: str = "-") -> None:
        self.lines.append(PrintLine(char * (self.columns // char_columns(char))))

    def blank(self) -> None:
        self.text("")

    def qr(self, content: str) -> None:
        self.lines.append(PrintLine(qr=content))


def _label(text: object) -> str:
    return clean(text) + ": "


def layout_receipt(data: ReceiptData, *, columns: int) -> list[PrintLine]:
    """A sale's receipt for a paper of `columns` columns (32 for 58 mm, 48 for 80 mm)."""
    if columns < 24:
        raise ValueError(f"a receipt needs at least 24 columns, not {columns}")
    sheet = _Sheet(columns)
    sheet.title(clean(data.shop_name))
    if data.copy:
        sheet.text(clean(_l("*** COPY ***")), bold=True, align="center")
    sheet.row(_label(_l("Receipt No.")), clean(data.receipt_no))
    sheet.row(_label(_l("Time")), f"{data.at:%Y-%m-%d %H:%M}")
    sheet.row(_label(_l("Clerk")), clean(data.clerk))
    sheet.row(_label(_l("Head of household")), clean(data.head_name))
    if data.card_last4:
        sheet.row(_label(_l("Card")), ELLIPSIS + clean(data.card_last4))
    sheet.rule()
    wide = columns >= WIDTH_80MM
    for line in data.lines:
        name = clean(line.name)
        detail = f"{line.qty} × {line.points_each}"
        points = str(line.points)
        if wide:
            # On 80 mm a name shares its first line with the figures, in columns of their own.
            figures = rjust(detail, 13) + rjust(points, 9)
            room = columns - gbk_columns(figures)
            names = wrap(name, room - 1, max_lines=NAME_LINES)
            sheet.text(pad(names[0], room) + figures)
            for more in names[1:]:
                sheet.text(more)
        else:
            for part in wrap(name, columns, max_lines=NAME_LINES):
                sheet.text(part)
            sheet.row("    " + detail, points)
    sheet.rule()
    sheet.row(clean(_l("Total points")), str(data.total), bold=True)
    sheet.row(clean(_l("Points before")), str(data.balance_before))
    sheet.row(clean(_l("Points left")), str(data.balance_after))
    for ret in data.returns:
        label = clean(_l("Voided") if ret.kind == "void" else _l("Returned"))
        reason = clean(ret.reason).strip()
        sheet.row(f"{label} {reason}" if reason else label, f"+{ret.points}")
    if data.voided:
        sheet.text(clean(_l("*** VOIDED ***")), bold=True, align="center")
    sheet.blank()
    for part in wrap(clean(_l("Thank you for your good deeds!")), columns):
        sheet.text(part, align="center")
    sheet.qr(data.receipt_no)
    sheet.text(clean(data.receipt_no), align="center")
    return sheet.lines


def layout_daily_report(report: ReportData, *, columns: int) -> list[PrintLine]:
    """The counter's day on paper: totals, goods, clerks, and any difference from the ledger."""
    if columns < 24:
        raise ValueError(f"a report needs at least 24 columns, not {columns}")
    sheet = _Sheet(columns)
    sheet.title(clean(report.shop_name))
    sheet.text(clean(_l("Daily report")), bold=True, align="center")
    sheet.row(_label(_l("Shop")), clean(report.shop_code))
    sheet.row(_label(_l("Date")), report.day.isoformat())
    sheet.rule()
    sheet.row(clean(_l("Sales")), str(report.sales))
    sheet.row(clean(_l("Voided")), str(report.voided))
    sheet.row(clean(_l("Points redeemed")), str(report.points_redeemed))
    sheet.row(clean(_l("Points refunded")), str(report.points_refunded))
    sheet.row(clean(_l("Net points")), str(report.net_points), bold=True)
    sheet.row(clean(_l("Ledger points")), str(report.ledger_points))
    sheet.row(
        clean(_l("Matches the ledger")),
        clean(_l("Yes") if report.matches_ledger else _l("No")),
        bold=not report.matches_ledger,
    )
    if report.products:
        sheet.rule()
        sheet.row(clean(_l("Goods")), clean(_l("Sold")) + " / " + clean(_l("Points")))
        for item in report.products:
            figures = f"{item.qty_sold}"
            if item.qty_returned:
                figures += f"-{item.qty_returned}"
            figures += f" / {item.points}"
            sheet.row(clean(item.name), figures)
    if report.clerks:
        sheet.rule()
        for clerk in report.clerks:
            sheet.row(clean(clerk.username), f"{clerk.sales} / {clerk.points}")
    if report.differences:
        sheet.rule()
        sheet.text(clean(_l("Differences")), bold=True)
        for diff in report.differences:
            sheet.row(clean(diff.label), f"{diff.shop_points} / {diff.ledger_points}")
    sheet.rule()
    return sheet.lines


def render_text(lines: Iterable[PrintLine]) -> str:
    """The lines as plain text (the API's format=text, the sale page); QR codes are left out."""
    out = []
    lines = list(lines)
    columns = max((line.cells for line in lines if line.qr is None), default=0)
    for line in lines:
        if line.qr is not None:
            continue
        text = pad(line.text.strip(), columns, "center") if line.double else line.text
        out.append(text.rstrip())
    return "\n".join(out) + "\n"

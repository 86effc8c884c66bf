"""The printable A4 notice of a period's red and black lists, for the village notice board."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from core.fonts import FontChain, draw_pdf_text, font_chain, pdf_font, pdf_markup
from county.services import BlackList, RedList, TenStarList

# The notice speaks to villagers in Chinese whatever the operator's screen language is:
# these are printed words on the board, like the member cards' (member_cards/sheets.py).
COUNTY_NAME = "长阳县"
RED = colors.Color(0.66, 0.11, 0.12)
DARK = colors.Color(0.15, 0.15, 0.15)
GREY = colors.Color(0.45, 0.45, 0.45)
MARGIN = 16 * mm


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=font, fontSize=11, leading=15, wordWrap="CJK")
    return {
        "title": ParagraphStyle(
            "title", parent=base, fontSize=24, leading=30, alignment=TA_CENTER, textColor=RED
        ),
        "sub": ParagraphStyle("sub", parent=base, fontSize=13, leading=18, alignment=TA_CENTER),
        "h": ParagraphStyle("h", parent=base, fontSize=16, leading=22, textColor=colors.white),
        "cell": base,
        "num": ParagraphStyle("num", parent=base, alignment=TA_RIGHT),
        "note": ParagraphStyle("note", parent=base, fontSize=10, leading=14, textColor=DARK),
        "sign": ParagraphStyle("sign", parent=base, fontSize=12, leading=18, alignment=TA_RIGHT),
        "empty": ParagraphStyle("empty", parent=base, textColor=GREY),
    }


class _Band(Flowable):
    """A coloured heading band across the page: 红榜 in red, 黑榜 in black."""

    def __init__(self, text: str, colour: colors.Color, chain: FontChain) -> None:
        super().__init__()
        self.text, self.colour, self.chain = text, colour, chain

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.width = avail_width
        return avail_width, 10 * mm

    def draw(self) -> None:
        self.canv.setFillColor(self.colour)
        self.canv.rect(0, 0, self.width, 9 * mm, stroke=0, fill=1)
        self.canv.setFillColor(colors.white)
        draw_pdf_text(self.canv, 4 * mm, 2.8 * mm, self.text, self.chain, 15)


def _table(rows: list[list[object]], widths: list[float], header_colour: colors.Color) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), header_colour),
                ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
                ("GRID", (0, 0), (-1, -1), 0.5, GREY),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return table


def _md(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local.month}月{local.day}日"


def render_notice(
    red: RedList,
    black: BlackList,
    ten_star: TenStarList | None,
    *,
    font_path: Path,
    tz: ZoneInfo,
    today: date,
) -> bytes:
    """The period's red list, black list and (when the scheme is complete) ten-star households."""
    # Each run of text in the first font that has it; a name with a character no installed
    # font has prints that character as its code rather than holding back the notice.
    chain = font_chain(font_path).for_pdf()
    st = _styles(pdf_font(chain.primary))
    place = red.village.name if red.village is not None else COUNTY_NAME
    period = red.period
    county_wide = red.village is None
    last_day = period.end_day - timedelta(days=1)

    def cell(text: object, style: str = "cell") -> Paragraph:
        return Paragraph(pdf_markup(chain, str(text)), st[style])

    story: list[Flowable] = [
        cell(f"{place}诚信积分红黑榜", "title"),
        Spacer(1, 2 * mm),
        cell(
            f"统计期间：{period.first_day.year}年{period.first_day.month}月{period.first_day.day}日"
            f"至{last_day.year}年{last_day.month}月{last_day.day}日（{period.label}）",
            "sub",
        ),
        Spacer(1, 6 * mm),
        _Band("红  榜", RED, chain),
    ]
    # The frame keeps 6 pt of padding on each side inside the margins.
    width = A4[0] - 2 * MARGIN - 12
    village_col = [cell("村")] if county_wide else []
    head = [cell("名次"), cell("户主"), *village_col, cell("得分"), cell("诚信积分")]
    rows: list[list[object]] = [head]
    for r in red.rows:
        village = [cell(r.village_name)] if county_wide else []
        rows.append(
            [
                cell(r.rank, "num"),
                cell(r.head_name),
                *village,
                cell(r.earned, "num"),
                cell(r.score, "num"),
            ]
        )
    if red.rows:
        widths = [18 * mm, 0, 30 * mm, 30 * mm]
        if county_wide:
            widths.insert(2, 40 * mm)
        widths[1] = width - sum(widths)
        story.append(_table(rows, widths, RED))
    else:
        story.append(cell("本期暂无上榜户。", "empty"))
    story += [Spacer(1, 8 * mm), _Band("黑  榜", DARK, chain)]
    if black.rows:
        rows = [[cell("户主"), *village_col, cell("扣分"), cell("事由")]]
        for e in black.rows:
            reasons = "；".join(f"{_md(p.at, tz)} {p.reason}（-{p.points}）" for p in e.penalties)
            village = [cell(e.village_name)] if county_wide else []
            rows.append([cell(e.head_name), *village, cell(e.penalised, "num"), cell(reasons)])
        widths = [34 * mm, *([34 * mm] if county_wide else []), 20 * mm]
        widths.append(width - sum(widths))
        story.append(_table(rows, widths, DARK))
    else:
        story.append(cell("本期无扣分户。", "empty"))
    if ten_star is not None and ten_star.scheme.complete and ten_star.rows:
        names = "、".join(
            r.head_name + (f"（{r.village_name}）" if county_wide else "") for r in ten_star.rows
        )
        story += [
            Spacer(1, 8 * mm),
            _Band(f"{len(ten_star.scheme.categories)}星级文明户", RED, chain),
            cell(names),
        ]
    story += [
        Spacer(1, 8 * mm),
        cell(
            "说明：诚信积分 = 本期所得积分 − 本期扣分；名单由诚信积分台账自动统计，"
            "已更正的记录不计。本期有扣分的家庭不上红榜和星级文明户名单。如有异议，请自公示之日起七日内向村委会反映。",
            "note",
        ),
        Spacer(1, 10 * mm),
        Paragraph(
            pdf_markup(chain, "长阳县文明办" if county_wide else place + "村民委员会")
            + "<br/>"
            + pdf_markup(chain, f"{today.year}年{today.month}月{today.day}日"),
            st["sign"],
        ),
    ]

    def footer(canvas: object, doc: object) -> None:
        canvas.saveState()  # type: ignore[attr-defined]
        canvas.setFillColor(GREY)  # type: ignore[attr-defined]
        page = f"{place} {period.label} 红黑榜 · 第 {doc.page} 页"  # type: ignore[attr-defined]
        draw_pdf_text(canvas, A4[0] / 2, 9 * mm, page, chain, 9, align="center")
        canvas.restoreState()  # type: ignore[attr-defined]

    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=f"{place} {period.label} 诚信积分红黑榜",
        author=COUNTY_NAME,
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()

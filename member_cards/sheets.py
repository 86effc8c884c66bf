"""Card images: the QR code as a PNG, and printable A4 sheets of ten ID-1 cards.

Every name prints: a character no installed font has is shown as its code ("[U+4DAE]"),
for the clerk to complete by hand, and `shortfalls` says which cards carry one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import qrcode
import qrcode.util
from qrcode.constants import ERROR_CORRECT_Q
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from core.fonts import FontChain, draw_pdf_text, font_chain, pdf_width

# Q (25% recovery) rather than the minimum M: cards live in pockets and get scratched,
# and at Q a typical payload still fits QR version 3 (29 modules), about 1 mm a module.
ERROR_CORRECTION = ERROR_CORRECT_Q
QUIET_ZONE_MODULES = 4
PNG_MODULE_PX = 10

# ID-1 (ISO/IEC 7810), two across and five down, laid out as 10-up A4 business-card stock:
# no gap between rows, one between the columns, the block centred on the page.
CARD_W = 85.6 * mm
CARD_H = 54 * mm
COLUMNS, ROWS = 2, 5
CARDS_PER_PAGE = COLUMNS * ROWS
GAP_X = 10 * mm
PAGE_W, PAGE_H = A4
MARGIN_X = (PAGE_W - COLUMNS * CARD_W - (COLUMNS - 1) * GAP_X) / 2
MARGIN_Y = (PAGE_H - ROWS * CARD_H) / 2

# Inside one card, from its bottom-left corner.
BAND_H = 11 * mm
PAD = 4 * mm
QR_SIZE = 33 * mm
QR_X = CARD_W - 2 * mm - QR_SIZE
QR_Y = 3 * mm
TEXT_W = QR_X - PAD
TITLE_SIZE = 10.5
TITLE_BASELINE = CARD_H - 7.3 * mm
HEAD_LABEL_BASELINE = 36.5 * mm
HEAD_SIZE = 15
HEAD_BASELINE = 30 * mm
DETAIL_SIZE = 9
VILLAGE_BASELINE = 22.5 * mm
SERIAL_BASELINE = 17 * mm
NOTE_SIZE = 6
NOTE_BASELINES = (8.2 * mm, 4.8 * mm)
BAND_RGB = (0.66, 0.11, 0.12)

# The card speaks to villagers, in Chinese, whatever language the operator's screen is in;
# these are printed words on card stock, not interface text.
CARD_TITLE = "长阳诚信超市 · 家庭积分卡"
CARD_NOTES = (
    "本卡是家庭诚信积分凭证，凭卡在诚信超市兑换。",
    "遗失请到村委会挂失补办，他人拾得无效。",
)
HEAD_LABEL = "户主"
VILLAGE_LABEL = "村："
SERIAL_LABEL = "卡号："


@dataclass(frozen=True)
class CardFace:
    """What one printed card shows."""

    payload: str
    head_name: str
    village_name: str
    serial: str


def qr_code(payload: str) -> qrcode.QRCode:
    code = qrcode.QRCode(
        error_correction=ERROR_CORRECTION, box_size=PNG_MODULE_PX, border=QUIET_ZONE_MODULES
    )
    # Alphanumeric mode explicitly: the payload is built for it, and it keeps the code small.
    code.add_data(qrcode.util.QRData(payload, mode=qrcode.util.MODE_ALPHA_NUM))
    code.make(fit=True)
    return code


def qr_png(payload: str) -> bytes:
    image = qr_code(payload).make_image()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _fit(text: str, chain: FontChain, size: float, width: float, smallest: float) -> float:
    while size > smallest and pdf_width(chain, text, size) > width:
        size -= 0.5
    return size


@dataclass(frozen=True)
class Shortfall:
    """A card whose printed text has characters no installed font has, shown as their codes."""

    index: int
    face: CardFace
    missing: tuple[str, ...]


def pdf_chain(font_path: Path) -> FontChain:
    """The fonts a sheet draws with: `font_path` first, then what is installed.

    The sheet's own words must be there: a font chain without them is the wrong set-up.
    """
    chain = font_chain(font_path).for_pdf()
    chain.require([CARD_TITLE, *CARD_NOTES, HEAD_LABEL, VILLAGE_LABEL, SERIAL_LABEL])
    return chain


def shortfalls(faces: Sequence[CardFace], *, font_path: Path) -> list[Shortfall]:
    """The cards whose names print with a placeholder, in sheet order."""
    chain = pdf_chain(font_path)
    found = []
    for index, face in enumerate(faces):
        missing = chain.missing(face.head_name + face.village_name + face.serial)
        if missing:
            found.append(Shortfall(index, face, tuple(missing)))
    return found


def card_origin(index: int) -> tuple[float, float]:
    """Bottom-left corner, in points, of the card at this place on its page (0 to 9)."""
    row, column = divmod(index % CARDS_PER_PAGE, COLUMNS)
    x = MARGIN_X + column * (CARD_W + GAP_X)
    y = PAGE_H - MARGIN_Y - (row + 1) * CARD_H
    return x, y


def _draw_qr(pdf: canvas.Canvas, payload: str, x: float, y: float, size: float) -> None:
    matrix = qr_code(payload).get_matrix()
    module = size / len(matrix)
    pdf.setFillColorRGB(0, 0, 0)
    # One rectangle per run of dark modules: crisp at any printer resolution, and small.
    for r, row in enumerate(matrix):
        top = y + size - (r + 1) * module
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                pdf.rect(x + start * module, top, (c - start) * module, module, stroke=0, fill=1)
            else:
                c += 1


def _draw_card(pdf: canvas.Canvas, face: CardFace, x: float, y: float, chain: FontChain) -> None:
    pdf.setLineWidth(0.3)
    pdf.setStrokeColorRGB(0.75, 0.75, 0.75)
    pdf.rect(x, y, CARD_W, CARD_H, stroke=1, fill=0)

    pdf.setFillColorRGB(*BAND_RGB)
    pdf.rect(x, y + CARD_H - BAND_H, CARD_W, BAND_H, stroke=0, fill=1)
    pdf.setFillColorRGB(1, 1, 1)
    size = _fit(CARD_TITLE, chain, TITLE_SIZE, CARD_W - 2 * PAD, 7)
    draw_pdf_text(pdf, x + PAD, y + TITLE_BASELINE, CARD_TITLE, chain, size)

    pdf.setFillColorRGB(0.4, 0.4, 0.4)
    draw_pdf_text(pdf, x + PAD, y + HEAD_LABEL_BASELINE, HEAD_LABEL, chain, 7)
    pdf.setFillColorRGB(0, 0, 0)
    size = _fit(face.head_name, chain, HEAD_SIZE, TEXT_W, 8)
    draw_pdf_text(pdf, x + PAD, y + HEAD_BASELINE, face.head_name, chain, size)

    for label, value, baseline in (
        (VILLAGE_LABEL, face.village_name, VILLAGE_BASELINE),
        (SERIAL_LABEL, face.serial, SERIAL_BASELINE),
    ):
        text = label + value
        size = _fit(text, chain, DETAIL_SIZE, TEXT_W, 6)
        draw_pdf_text(pdf, x + PAD, y + baseline, text, chain, size)

    pdf.setFillColorRGB(0.3, 0.3, 0.3)
    for note, baseline in zip(CARD_NOTES, NOTE_BASELINES, strict=True):
        size = _fit(note, chain, NOTE_SIZE, TEXT_W, 4.5)
        draw_pdf_text(pdf, x + PAD, y + baseline, note, chain, size)

    _draw_qr(pdf, face.payload, x + QR_X, y + QR_Y, QR_SIZE)


def render_sheet(faces: Sequence[CardFace], *, font_path: Path, title: str) -> bytes:
    """A PDF of the cards, ten to an A4 page, in the order given.

    A name with a character no installed font has still prints, the character as its
    code; `shortfalls` lists those cards for the person printing.
    """
    chain = pdf_chain(font_path)
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    pdf.setTitle(title)
    pdf.setCreator("Integrity Supermarket POS")
    for index, face in enumerate(faces):
        if index and index % CARDS_PER_PAGE == 0:
            pdf.showPage()
        _draw_card(pdf, face, *card_origin(index), chain)
    pdf.showPage()
    pdf.save()
    return out.getvalue()

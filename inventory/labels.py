"""Shelf labels and barcode stickers: an A4 PDF sheet, or one image for a label printer."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from core.fonts import FontChain, FontMissing, draw_pdf_text, draw_text, font_chain, pdf_width
from core.fonts import text_width as image_width
from inventory.barcodes import modules

DEFAULT_CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
# The common 24-up A4 label stock (3 x 8 labels of 70 x 37 mm, no page margin).
SHEET_COLUMNS = 3
SHEET_ROWS = 8
# EAN quiet zones, in modules, left and right of the bars.
QUIET_LEFT, QUIET_RIGHT = 11, 7


class MissingFont(Exception):
    """The CJK font the labels need is not where the settings say."""

    def __init__(self, path: str, why: str = "not found") -> None:
        super().__init__(f"CJK font {path} {why}; set CJK_FONT_PATH to a TrueType font file")
        self.path = path


@dataclass(frozen=True)
class Label:
    """What one label shows; texts are already in the reader's language."""

    name: str
    price_text: str
    barcode: str
    sku: str


def _chain(font_path: str) -> FontChain:
    """The configured font first, then the installed fallbacks, for each character."""
    if not Path(font_path).is_file():
        raise MissingFont(font_path)
    try:
        return font_chain(font_path)
    except FontMissing as exc:
        raise MissingFont(font_path, f"cannot be read ({exc.detail or exc.title})") from exc


def _fit_pdf(
    text: str, chain: FontChain, size: float, width: float, smallest: float
) -> tuple[str, float]:
    while size > smallest and pdf_width(chain, text, size) > width:
        size -= 0.5
    while len(text) > 1 and pdf_width(chain, text, size) > width:
        text = text[:-2] + "…"
    return text, size


def _pdf_bars(
    pdf: canvas.Canvas, code: str, x: float, y: float, width: float, height: float
) -> float:
    """Draw the bars with their quiet zones inside width; return the module width used."""
    pattern = modules(code)
    module = min(0.33 * mm, width / (len(pattern) + QUIET_LEFT + QUIET_RIGHT))
    left = x + (width - len(pattern) * module) / 2
    pdf.setFillColorRGB(0, 0, 0)
    run_start = None
    for i, bit in enumerate(pattern + "0"):
        if bit == "1" and run_start is None:
            run_start = i
        elif bit == "0" and run_start is not None:
            pdf.rect(left + run_start * module, y, (i - run_start) * module, height, 0, 1)
            run_start = None
    return module


def render_label_sheet(labels: Sequence[Label], *, font_path: str) -> bytes:
    """An A4 PDF of 24-up labels: name, points price and unit, EAN barcode with digits."""
    chain = _chain(font_path)
    try:
        chain = chain.for_pdf()
    except FontMissing as exc:
        raise MissingFont(font_path, f"cannot be embedded ({exc.detail})") from exc
    page_w, page_h = A4
    cell_w, cell_h = page_w / SHEET_COLUMNS, page_h / SHEET_ROWS
    pad = 4 * mm
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle("Labels")
    per_page = SHEET_COLUMNS * SHEET_ROWS
    for index, label in enumerate(labels):
        if index and index % per_page == 0:
            pdf.showPage()
        slot = index % per_page
        x = (slot % SHEET_COLUMNS) * cell_w + pad
        top = page_h - (slot // SHEET_COLUMNS) * cell_h - pad
        inner_w = cell_w - 2 * pad

        name, size = _fit_pdf(label.name, chain, 12, inner_w, 7)
        draw_pdf_text(pdf, x, top - size, name, chain, size)
        price, price_size = _fit_pdf(label.price_text, chain, 13, inner_w * 0.7, 8)
        draw_pdf_text(pdf, x, top - size - 2 * mm - price_size, price, chain, price_size)
        baseline = top - size - 2 * mm - price_size
        draw_pdf_text(pdf, x + inner_w, baseline, label.sku, chain, 6, align="right")

        bottom = top - cell_h + 2 * pad
        digits = 7
        _pdf_bars(pdf, label.barcode, x, bottom + digits + 1, inner_w, 10 * mm)
        draw_pdf_text(pdf, x + inner_w / 2, bottom, label.barcode, chain, digits, align="center")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _fit_image(text: str, chain: FontChain, size: int, width: int) -> tuple[str, int]:
    """The text and pixel size that fit `width`: smaller first, then cut with an ellipsis.

    Measured run by run in the fonts that draw it, so any text a user typed measures.
    """
    while size > 10 and image_width(chain, text, size) > width:
        size -= 1
    while len(text) > 1 and image_width(chain, text, size) > width:
        text = text[:-2] + "…"
    return text, size


def render_label_image(
    label: Label, *, font_path: str, width_mm: int = 50, height_mm: int = 30, dpi: int = 203
) -> bytes:
    """One label as a black-and-white PNG sized for a thermal label printer.

    Bars are whole printer dots wide: a scaled, blurred bar does not scan.
    """
    chain = _chain(font_path)
    width = round(width_mm / 25.4 * dpi)
    height = round(height_mm / 25.4 * dpi)
    pad = max(4, width // 40)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    inner = width - 2 * pad

    name, name_size = _fit_image(label.name, chain, height // 8, inner)
    draw_text(draw, (pad, pad), name, chain, name_size)
    y = pad + name_size + pad // 2
    price, price_size = _fit_image(label.price_text, chain, height // 7, inner)
    draw_text(draw, (pad, y), price, chain, price_size)
    y += price_size + pad

    pattern = modules(label.barcode)
    module = max(1, inner // (len(pattern) + QUIET_LEFT + QUIET_RIGHT))
    digits_size = max(10, height // 12)
    bars_bottom = height - pad - digits_size - 2
    left = (width - len(pattern) * module) // 2
    for i, bit in enumerate(pattern):
        if bit == "1":
            draw.rectangle((left + i * module, y, left + (i + 1) * module - 1, bars_bottom), fill=0)
    text_w = image_width(chain, label.barcode, digits_size)
    draw_text(draw, ((width - text_w) / 2, bars_bottom + 2), label.barcode, chain, digits_size)

    # Thermal heads print dots or nothing: threshold, never dither. The threshold is light
    # because the Mincho fallback faces (HanaMin for rare names) have hairline horizontals
    # that anti-aliasing leaves pale grey at label sizes; at 128 they vanish.
    bilevel = image.point(lambda v: 0 if v < 192 else 255).convert("1", dither=Image.Dither.NONE)
    out = io.BytesIO()
    bilevel.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()

"""Shelf labels and barcode stickers: an A4 PDF sheet, or one image for a label printer."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen import canvas

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


def _checked_font_path(font_path: str) -> str:
    if not Path(font_path).is_file():
        raise MissingFont(font_path)
    return font_path


def _pdf_font(font_path: str) -> str:
    """Register the font with reportlab once per path; it is embedded (subset) in each PDF."""
    name = "CJK-" + hashlib.sha1(font_path.encode()).hexdigest()[:10]
    if name not in pdfmetrics.getRegisteredFontNames():
        try:
            pdfmetrics.registerFont(TTFont(name, _checked_font_path(font_path), subfontIndex=0))
        except TTFError as exc:
            raise MissingFont(font_path, f"cannot be read ({exc})") from exc
    return name


def _fit_pdf(text: str, font: str, size: float, width: float, smallest: float) -> tuple[str, float]:
    while size > smallest and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 0.5
    while len(text) > 1 and pdfmetrics.stringWidth(text, font, size) > width:
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
    font = _pdf_font(font_path)
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

        name, size = _fit_pdf(label.name, font, 12, inner_w, 7)
        pdf.setFont(font, size)
        pdf.drawString(x, top - size, name)
        price, price_size = _fit_pdf(label.price_text, font, 13, inner_w * 0.7, 8)
        pdf.setFont(font, price_size)
        pdf.drawString(x, top - size - 2 * mm - price_size, price)
        pdf.setFont(font, 6)
        pdf.drawRightString(x + inner_w, top - size - 2 * mm - price_size, label.sku)

        bottom = top - cell_h + 2 * pad
        digits = 7
        _pdf_bars(pdf, label.barcode, x, bottom + digits + 1, inner_w, 10 * mm)
        pdf.setFont(font, digits)
        pdf.drawCentredString(x + inner_w / 2, bottom, label.barcode)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _image_font(font_path: str, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(_checked_font_path(font_path), size, index=0)
    except OSError as exc:
        raise MissingFont(font_path, f"cannot be read ({exc})") from exc


def _fit_image(
    draw: ImageDraw.ImageDraw, text: str, font_path: str, size: int, width: int
) -> tuple[str, ImageFont.FreeTypeFont]:
    font = _image_font(font_path, size)
    while size > 10 and draw.textlength(text, font=font) > width:
        size -= 1
        font = _image_font(font_path, size)
    while len(text) > 1 and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…"
    return text, font


def render_label_image(
    label: Label, *, font_path: str, width_mm: int = 50, height_mm: int = 30, dpi: int = 203
) -> bytes:
    """One label as a black-and-white PNG sized for a thermal label printer.

    Bars are whole printer dots wide: a scaled, blurred bar does not scan.
    """
    width = round(width_mm / 25.4 * dpi)
    height = round(height_mm / 25.4 * dpi)
    pad = max(4, width // 40)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    inner = width - 2 * pad

    name, name_font = _fit_image(draw, label.name, font_path, height // 8, inner)
    draw.text((pad, pad), name, font=name_font, fill=0)
    y = pad + name_font.size + pad // 2
    price, price_font = _fit_image(draw, label.price_text, font_path, height // 7, inner)
    draw.text((pad, y), price, font=price_font, fill=0)
    y += price_font.size + pad

    pattern = modules(label.barcode)
    module = max(1, inner // (len(pattern) + QUIET_LEFT + QUIET_RIGHT))
    digits_font = _image_font(font_path, max(10, height // 12))
    bars_bottom = height - pad - digits_font.size - 2
    left = (width - len(pattern) * module) // 2
    for i, bit in enumerate(pattern):
        if bit == "1":
            draw.rectangle((left + i * module, y, left + (i + 1) * module - 1, bars_bottom), fill=0)
    text_w = draw.textlength(label.barcode, font=digits_font)
    draw.text(((width - text_w) / 2, bars_bottom + 2), label.barcode, font=digits_font, fill=0)

    # Thermal heads print dots or nothing: threshold, never dither.
    bilevel = image.point(lambda v: 0 if v < 128 else 255).convert("1", dither=Image.Dither.NONE)
    out = io.BytesIO()
    bilevel.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()

"""ESC/POS bytes of printable lines: GBK text in the printer's Chinese mode, or a raster image."""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import qrcode
from escpos.capabilities import BaseProfile, get_profile_class
from escpos.printer import Dummy
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

from core.fonts import find_cjk_font
from pos.receipts.layout import PAPER, PrintLine, char_columns, encode_gbk

MODES = ("text", "image")

# FS & enters the Chinese character mode of GBK printers, FS . leaves it.
FS_CHINESE_ON = b"\x1c\x26"
FS_CHINESE_OFF = b"\x1c\x2e"
ESC_INIT = b"\x1b\x40"
# ESC E for bold; GS ! for size, which (unlike ESC !) Chinese characters obey too.
BOLD = {True: b"\x1b\x45\x01", False: b"\x1b\x45\x00"}
SIZE = {True: b"\x1d\x21\x11", False: b"\x1d\x21\x00"}
# GS v 0 is the raster command every ESC/POS printer knows (python-escpos "bitImageRaster").
IMAGE_IMPL = "bitImageRaster"
# A column of the printer's 12x24 font is 12 dots; 384/32 and 576/48 alike.
CELL_DOTS = 12
FONT_PX = 24
# Line pitch of image mode: the 24-dot font with 6 dots between lines, as text mode prints.
LINE_DOTS = 30
BASELINE = 23
QR_BOX_DOTS = 6
QR_BORDER = 4
# Anti-aliased glyphs go to paper darker than they look: ink anything at least half grey.
THRESHOLD = [0 if v < 128 else 255 for v in range(256)]


def paper(paper_mm: int) -> tuple[int, int]:
    try:
        return PAPER[paper_mm]
    except KeyError:
        raise ValueError(f"paper must be one of {sorted(PAPER)} mm, not {paper_mm}") from None


@lru_cache(maxsize=64)
def printer_profile(name: str | None, dots: int) -> BaseProfile:
    """The python-escpos profile `name`, told how wide the paper prints when it does not know.

    The profile decides which cut the printer gets; a profile that prints narrower than the
    paper cannot take the receipt image.
    """
    try:
        base = get_profile_class(name or "default")
    except KeyError:
        raise ValueError(f"unknown printer profile {name!r}") from None
    data = copy.deepcopy(base.profile_data)
    width = data.setdefault("media", {}).setdefault("width", {})
    pixels = width.get("pixels")
    if not isinstance(pixels, int):
        width["pixels"] = dots
    elif pixels < dots:
        raise ValueError(f"printer profile {name} prints {pixels} dots, the paper needs {dots}")
    return type(base.__name__, (base,), {"profile_data": data})()


def _printer(profile: str | None, dots: int) -> Dummy:
    printer = Dummy()
    printer.profile = printer_profile(profile, dots)
    return printer


def qr_image(content: str) -> Image.Image:
    """A QR code of `content` in 1-bit, 6 dots a module with the standard 4-module margin."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=QR_BOX_DOTS, border=QR_BORDER)
    code.add_data(content)
    code.make(fit=True)
    return code.make_image().get_image().convert("1")


def render_escpos(
    lines: Sequence[PrintLine],
    *,
    paper_mm: int,
    mode: str,
    profile: str | None = None,
    font_path: str | Path | None = None,
) -> bytes:
    """ESC @, the receipt as GBK text or as one image, then feed and cut.

    `profile` names a python-escpos printer profile (what it can cut, how wide it prints);
    `font_path` is the CJK font image mode draws with (default: core.fonts.find_cjk_font).
    """
    _columns, dots = paper(paper_mm)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    printer = _printer(profile, dots)
    printer._raw(ESC_INIT)
    if mode == "text":
        _send_text(printer, lines, dots)
    else:
        image = render_image(lines, paper_mm=paper_mm, font_path=font_path)
        printer.image(image, impl=IMAGE_IMPL)
    printer.cut()
    return printer.output


def _centered(image: Image.Image, dots: int) -> Image.Image:
    """`image` moved to the middle of the paper by white dots on its left.

    Printers ignore ESC a for some raster commands; white on the right would only cost bytes.
    """
    left = (dots - image.width) // 2
    width = min(dots, -(-(left + image.width) // 8) * 8)
    canvas = Image.new("1", (width, image.height), 1)
    canvas.paste(image, (left, 0))
    return canvas


def _send_text(printer: Dummy, lines: Sequence[PrintLine], dots: int) -> None:
    out: list[bytes] = [FS_CHINESE_ON]
    bold = double = False
    for line in lines:
        if line.qr is not None:
            printer._raw(b"".join(out))
            out = []
            # An image, not the printer's own QR command: older GBK printers lack GS ( k.
            printer.image(_centered(qr_image(line.qr), dots), impl=IMAGE_IMPL)
            continue
        if line.double != double:
            double = line.double
            out.append(SIZE[double])
        if line.bold != bold:
            bold = line.bold
            out.append(BOLD[bold])
        out.append(encode_gbk(line.text))
        out.append(b"\n")
    if bold:
        out.append(BOLD[False])
    if double:
        out.append(SIZE[False])
    out.append(FS_CHINESE_OFF)
    printer._raw(b"".join(out))


@lru_cache(maxsize=8)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=8192)
def _glyph(path: str, ch: str, columns: int, bold: bool, scale: int) -> Image.Image:
    """One character in its cell, 1-bit; wider glyphs (Latin 'W') are squeezed into it."""
    font = _font(path, FONT_PX * scale)
    width, height = columns * CELL_DOTS * scale, LINE_DOTS * scale
    advance = font.getlength(ch)
    canvas_width = max(width, int(advance) + 2 * scale)
    im = Image.new("L", (canvas_width, height), 255)
    draw = ImageDraw.Draw(im)
    x = (canvas_width - advance) / 2
    for dx in (0, scale) if bold else (0,):
        draw.text((x + dx, BASELINE * scale), ch, font=font, fill=0, anchor="ls")
    if canvas_width > width:
        im = im.resize((width, height), Image.Resampling.BILINEAR)
    return im.point(THRESHOLD, "1")


def _font_path(font_path: str | Path | None) -> str:
    return str(font_path or find_cjk_font(None))


def render_image(
    lines: Sequence[PrintLine], *, paper_mm: int, font_path: str | Path | None = None
) -> Image.Image:
    """The lines drawn as the printer's font would print them: 1-bit, exactly the paper's dots."""
    _columns, dots = paper(paper_mm)
    path = _font_path(font_path)
    blocks: list[tuple[int, Image.Image | PrintLine]] = []
    height = 0
    for line in lines:
        if line.qr is not None:
            qr = qr_image(line.qr)
            blocks.append((height, qr))
            height += qr.height
        else:
            blocks.append((height, line))
            height += LINE_DOTS * (2 if line.double else 1)
    canvas = Image.new("1", (dots, height), 1)
    for top, block in blocks:
        if isinstance(block, Image.Image):
            canvas.paste(block, ((dots - block.width) // 2, top))
            continue
        scale = 2 if block.double else 1
        col = 0
        for ch in block.text:
            cols = char_columns(ch)
            if ch != " ":
                glyph = _glyph(path, ch, cols, block.bold, scale)
                canvas.paste(glyph, (col * CELL_DOTS * scale, top))
            col += cols
    return canvas


def render_png(
    lines: Sequence[PrintLine], *, paper_mm: int, font_path: str | Path | None = None
) -> bytes:
    """The image of image mode as a PNG, for the screen."""
    out = io.BytesIO()
    render_image(lines, paper_mm=paper_mm, font_path=font_path).save(out, format="PNG")
    return out.getvalue()

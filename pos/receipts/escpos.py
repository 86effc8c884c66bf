"""ESC/POS bytes of printable lines: Chinese text in the printer's own font, or a raster image.

Text mode sends GBK, or GB18030 when the printer's profile says so ("TM-T88V gb18030");
a line with a character the printer's character set lacks (䶮 on a GBK printer, an emoji
anywhere) goes as a small raster image of that line, so every name prints right.
"""

from __future__ import annotations

import copy
import io
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import qrcode
from escpos.capabilities import BaseProfile, get_profile_class
from escpos.printer import Dummy
from PIL import Image, ImageDraw
from qrcode.constants import ERROR_CORRECT_M

from core.fonts import FontChain, font_chain, image_font
from pos.receipts.layout import PAPER, PrintLine, char_columns

MODES = ("text", "image")
# The Chinese character sets a printer's profile may name: GBK, which every Chinese ESC/POS
# printer has, unless the profile says GB18030.
CHARSETS = ("gbk", "gb18030")
DEFAULT_CHARSET = "gbk"

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
# Anti-aliased glyphs go to paper darker than they look: ink anything darker than light grey,
# or the hairline strokes of the Mincho fallback faces (HanaMin, for rare names) vanish.
THRESHOLD = [0 if v < 160 else 255 for v in range(256)]


def paper(paper_mm: int) -> tuple[int, int]:
    try:
        return PAPER[paper_mm]
    except KeyError:
        raise ValueError(f"paper must be one of {sorted(PAPER)} mm, not {paper_mm}") from None


def parse_profile(text: str | None) -> tuple[str | None, str]:
    """A printer's profile setting: (python-escpos profile name or None, character set).

    The setting is the python-escpos profile name, optionally with the printer's Chinese
    character set as a word of its own: "TM-T88V gb18030", or "gb18030" alone.
    """
    name: str | None = None
    charset = DEFAULT_CHARSET
    for word in (text or "").split():
        if word.lower() in CHARSETS:
            charset = word.lower()
        elif name is None:
            name = word
        else:
            raise ValueError(f"unknown printer profile {text!r}")
    return name, charset


def profile_charset(text: str | None) -> str:
    """The Chinese character set the printer's profile names (gbk unless it says gb18030)."""
    return parse_profile(text)[1]


@lru_cache(maxsize=64)
def printer_profile(name: str | None, dots: int) -> BaseProfile:
    """The python-escpos profile `name`, told how wide the paper prints when it does not know.

    The profile decides which cut the printer gets; a profile that prints narrower than the
    paper cannot take the receipt image. A character set word in `name` is set aside.
    """
    escpos_name, _charset = parse_profile(name)
    try:
        base = get_profile_class(escpos_name or "default")
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
    """ESC @, the receipt as Chinese text or as one image, then feed and cut.

    `profile` names a python-escpos printer profile (what it can cut, how wide it prints)
    and the printer's character set; `font_path` is the CJK font images are drawn with
    first (then the fonts found on the machine). Text mode needs a font only for a line
    the printer's character set cannot print.
    """
    _columns, dots = paper(paper_mm)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    printer = _printer(profile, dots)
    printer._raw(ESC_INIT)
    if mode == "text":
        _send_text(printer, lines, dots, profile_charset(profile), font_path)
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


def _cjk_ideograph(code: int) -> bool:
    # The unified ideographs GB18030 printers carry: the main block, Extensions A and B.
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF


@lru_cache(maxsize=8192)
def printable(char: str, charset: str) -> bool:
    """The printer's own font has the character in this character set.

    A GB18030 printer has GB18030's two-byte codes and the ideographs of its four-byte range
    (Extensions A and B); the rest of that range (emoji, other scripts) and private-use
    codes are in neither set's font.
    """
    if " " <= char < "\x7f":
        return True
    if unicodedata.category(char) == "Co":
        return False
    try:
        encoded = char.encode(charset)
    except UnicodeEncodeError:
        return False
    return charset == "gbk" or len(encoded) == 2 or _cjk_ideograph(ord(char))


def encode_line(text: str, charset: str) -> bytes | None:
    """The bytes of a line in the printer's character set; None when it cannot print it all."""
    if all(printable(char, charset) for char in text):
        return text.encode(charset)
    return None


def _send_text(
    printer: Dummy,
    lines: Sequence[PrintLine],
    dots: int,
    charset: str,
    font_path: str | Path | None,
) -> None:
    out: list[bytes] = [FS_CHINESE_ON]
    bold = double = False
    chain: FontChain | None = None

    def send_image(image: Image.Image) -> None:
        printer._raw(b"".join(out))
        out.clear()
        printer.image(image, impl=IMAGE_IMPL)

    for line in lines:
        if line.qr is not None:
            # An image, not the printer's own QR command: older GBK printers lack GS ( k.
            send_image(_centered(qr_image(line.qr), dots))
            continue
        encoded = encode_line(line.text, charset)
        if encoded is None:
            # A name the printer's font lacks: drawn in ours, so it is right on paper.
            chain = chain or font_chain(font_path)
            send_image(_line_image(line, dots, chain))
            continue
        if line.double != double:
            double = line.double
            out.append(SIZE[double])
        if line.bold != bold:
            bold = line.bold
            out.append(BOLD[bold])
        out.append(encoded)
        out.append(b"\n")
    if bold:
        out.append(BOLD[False])
    if double:
        out.append(SIZE[False])
    out.append(FS_CHINESE_OFF)
    printer._raw(b"".join(out))


@lru_cache(maxsize=8192)
def _glyph(chain: FontChain, ch: str, columns: int, bold: bool, scale: int) -> Image.Image:
    """One character in its cell, 1-bit; wider glyphs (Latin 'W') are squeezed into it.

    Drawn by the first font of the chain that has it; a character none has is a box with
    its code in it (4D over AE for U+4DAE), which a clerk can read out.
    """
    face = chain.face_for(ch)
    if face is None:
        return _code_box(chain, ch, columns, scale)
    font = image_font(face, FONT_PX * scale)
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


def _code_box(chain: FontChain, ch: str, columns: int, scale: int) -> Image.Image:
    """A box in the character's cell with its code point in two rows of hex digits."""
    width, height = columns * CELL_DOTS * scale, LINE_DOTS * scale
    im = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(im)
    top, bottom = scale, (BASELINE + 1) * scale
    draw.rectangle((0, top, width - 1, bottom), outline=0, width=scale)
    code = f"{ord(ch):04X}"
    half = (len(code) + 1) // 2
    if chain.placeholder_face is not None:
        size = max(6, min((bottom - top) // 2, 2 * (width - 2 * scale) // half))
        font = image_font(chain.placeholder_face, size)
        middle = (top + bottom) / 2
        draw.text((width / 2, middle), code[:half], font=font, fill=0, anchor="md")
        draw.text((width / 2, middle + scale), code[half:], font=font, fill=0, anchor="ma")
    return im.point(THRESHOLD, "1")


def _draw_line(canvas: Image.Image, line: PrintLine, top: int, chain: FontChain) -> None:
    scale = 2 if line.double else 1
    col = 0
    for ch in line.text:
        cols = char_columns(ch)
        if ch != " ":
            glyph = _glyph(chain, ch, cols, line.bold, scale)
            canvas.paste(glyph, (col * CELL_DOTS * scale, top))
        col += cols


def _line_image(line: PrintLine, dots: int, chain: FontChain) -> Image.Image:
    """One text line as image mode draws it, for a line the printer's font cannot print."""
    canvas = Image.new("1", (dots, LINE_DOTS * (2 if line.double else 1)), 1)
    _draw_line(canvas, line, 0, chain)
    return canvas


def render_image(
    lines: Sequence[PrintLine], *, paper_mm: int, font_path: str | Path | None = None
) -> Image.Image:
    """The lines drawn as the printer's font would print them: 1-bit, exactly the paper's dots.

    Each character comes from the first font of the chain (`font_path`, then the fonts
    found on the machine) that has it.
    """
    _columns, dots = paper(paper_mm)
    chain = font_chain(font_path)
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
        else:
            _draw_line(canvas, block, top, chain)
    return canvas


def render_png(
    lines: Sequence[PrintLine], *, paper_mm: int, font_path: str | Path | None = None
) -> bytes:
    """The image of image mode as a PNG, for the screen."""
    out = io.BytesIO()
    render_image(lines, paper_mm=paper_mm, font_path=font_path).save(out, format="PNG")
    return out.getvalue()

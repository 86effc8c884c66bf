"""Is a printed character its glyph, not an empty box? Ink compared with the fonts' own drawing.

A cell cut from a rendered PDF page, receipt or label is compared with the character as
Pillow draws it in the font that has it, and with what a font without it draws (its
.notdef box, or nothing): it must look like the first, and not like the second.
"""

from __future__ import annotations

import os
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageStat

WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
HANAMIN_A = Path("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf")
HANAMIN_B = Path("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf")
NOTO_CJK = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
# The rare names of issue 15: CJK Extension A and B, a character GBK has but some fonts
# lack, and an emoji.
RARE = ("䶮", "𠮷", "喆", "😀")
# Ext H (Unicode 15): no font installed here has it, so it prints as its code.
NO_FONT_HAS = "\U00031350"


def require_fonts(*paths: Path) -> None:
    """Skip when a font is missing locally; in CI (.ci/run installs them) fail instead."""
    missing = [str(p) for p in paths if not p.is_file()]
    if not missing:
        return
    message = (
        f"fonts missing: {', '.join(missing)} (apt-get install fonts-wqy-microhei fonts-hanazono)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def ink(image: Image.Image) -> Image.Image | None:
    """The dark pixels of a white-paper image as a mask cropped to them; None when blank."""
    marks = image.convert("L").point(lambda v: 255 if v < 128 else 0)
    box = marks.getbbox()
    return marks.crop(box) if box else None


def drawn(char: str, font_path: Path, px: int, index: int = 0) -> Image.Image | None:
    """`char` as Pillow draws it with this font at `px` pixels, as an ink mask."""
    font = ImageFont.truetype(str(font_path), px, index=index)
    canvas = Image.new("L", (px * 3, px * 3), 255)
    ImageDraw.Draw(canvas).text((px, px), char, font=font, fill=0)
    return ink(canvas)


def tofu(px: int) -> Image.Image:
    """An empty box, what most fonts draw for a character they lack."""
    canvas = Image.new("L", (px, px), 255)
    ImageDraw.Draw(canvas).rectangle((1, 1, px - 2, px - 2), outline=0, width=max(1, px // 12))
    mask = ink(canvas)
    assert mask is not None
    return mask


def similarity(a: Image.Image, b: Image.Image) -> float:
    """How alike two ink masks are, 0 to 1: blurred, same size, intersection over union."""
    size = (48, 48)
    a = a.resize(size).filter(ImageFilter.GaussianBlur(1.5))
    b = b.resize(size).filter(ImageFilter.GaussianBlur(1.5))
    both = ImageStat.Stat(ImageChops.darker(a, b)).sum[0]
    either = ImageStat.Stat(ImageChops.lighter(a, b)).sum[0]
    return both / either if either else 0.0


def assert_glyph(
    cell: Image.Image, char: str, font_path: Path, *, index: int = 0, others: str = ""
) -> None:
    """The cell shows `char` as the font that has it draws it, not a box nor another char."""
    mask = ink(cell)
    assert mask is not None, f"{char!r} drew no ink"
    px = max(mask.size) * 2
    real = drawn(char, font_path, px, index)
    assert real is not None, f"{font_path} has no {char!r} after all"
    score = similarity(mask, real)
    assert score > 0.55, f"{char!r} does not look like itself ({score:.2f})"
    assert score > similarity(mask, tofu(px)) + 0.1, f"{char!r} looks like an empty box"
    for other in others:
        look = drawn(other, font_path, px, index)
        if look is not None and other != char:
            assert score > similarity(mask, look), f"{char!r} looks more like {other!r}"


def pdf_page(pdf: bytes, scale: float, number: int = 0) -> tuple[Image.Image, list[tuple]]:
    """A page rendered to grey pixels, and its characters' boxes in those pixels, in order."""
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[number]
        image = page.render(scale=scale).to_pil().convert("L")
        height = page.get_height()
        textpage = page.get_textpage()
        boxes = []
        for i in range(textpage.count_chars()):
            left, bottom, right, top = textpage.get_charbox(i)
            boxes.append(
                (
                    textpage.get_text_range(i, 1),
                    (
                        int(left * scale),
                        int((height - top) * scale),
                        int(right * scale) + 1,
                        int((height - bottom) * scale) + 1,
                    ),
                )
            )
        return image, boxes
    finally:
        document.close()


def pdf_cells_after(pdf: bytes, anchor: str, count: int, scale: float = 6) -> list[Image.Image]:
    """The `count` character cells that follow `anchor` on the first page.

    By position, not by text: ReportLab's text layer cuts characters beyond U+FFFF to 16
    bits, so 𠮷 cannot be found by its text; its box is still the one after its anchor.
    """
    image, boxes = pdf_page(pdf, scale)
    for i, (char, _box) in enumerate(boxes):
        if char == anchor:
            return [image.crop(box) for _char, box in boxes[i + 1 : i + 1 + count]]
    raise AssertionError(f"{anchor!r} is not on the page")

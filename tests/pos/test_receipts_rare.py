"""Rare names on receipts (issue 15): 䶮 (Ext A), 𠮷 (Ext B), 喆 and an emoji, right on paper.

A GB18030 printer gets them as GB18030 text, four-byte codes included; a GBK-only printer
gets the line that holds them as a small raster image inside the text receipt; image
mode draws them from the font chain. Never a '?' or an empty box.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.fonts import font_chain
from pos.receipts import escpos
from pos.receipts.escpos import CELL_DOTS, LINE_DOTS, parse_profile, printable, render_escpos
from pos.receipts.layout import PAPER, ReceiptLine, char_columns, layout_receipt
from tests.helpers.glyphs import HANAMIN_A, HANAMIN_B, NO_FONT_HAS, WQY, assert_glyph, require_fonts
from tests.pos.escpos_decoder import Raster, TextLine, decode, read_qr
from tests.pos.test_receipts import SALE

NAME = "王䶮𠮷喆"
EMOJI_NAME = "赵😀"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    app = Flask(__name__)
    Babel(app)
    with app.app_context(), force_locale("en"):
        yield


@pytest.fixture
def fonts_installed() -> None:
    require_fonts(WQY, HANAMIN_A, HANAMIN_B)


def _lines(head: str, paper_mm: int = 58, product: str = "大米 10斤") -> list:
    data = replace(SALE, head_name=head, lines=(ReceiptLine(product, 2, 70, 140),))
    return layout_receipt(data, columns=PAPER[paper_mm][0])


def _head_line(lines: list) -> int:
    return next(i for i, line in enumerate(lines) if line.text.startswith("Head of household"))


def _cells(image: Image.Image, text: str, wanted: str, top: int = 0) -> dict[str, Image.Image]:
    """Each wanted character's cell in a drawn line, where the printer's columns put it."""
    cells, col = {}, 0
    for char in text:
        cols = char_columns(char)
        if char in wanted:
            box = (col * CELL_DOTS, top, (col + cols) * CELL_DOTS, top + LINE_DOTS)
            cells[char] = image.crop(box)
        col += cols
    return cells


def _assert_drawn(image: Image.Image, text: str, wanted: str, top: int = 0) -> None:
    chain = font_chain(WQY)
    cells = _cells(image, text, wanted, top)
    assert set(cells) == set(wanted)
    for char, cell in cells.items():
        face = chain.face_for(char)
        assert face is not None, char
        assert_glyph(cell, char, face.path, index=face.index, others="王吉")


# --- profiles


def test_the_profile_says_the_character_set() -> None:
    assert parse_profile(None) == (None, "gbk")
    assert parse_profile("TM-T88V") == ("TM-T88V", "gbk")
    assert parse_profile("TM-T88V gb18030") == ("TM-T88V", "gb18030")
    assert parse_profile("GB18030") == (None, "gb18030")
    with pytest.raises(ValueError, match="unknown printer profile"):
        parse_profile("TM-T88V TM-T20II")
    # The printer's python-escpos profile still decides the cut.
    decoded = decode(
        render_escpos(_lines("王"), paper_mm=58, mode="text", profile="POS-5890 gb18030"), "gb18030"
    )
    assert decoded.cuts == []


def test_the_printer_settings_take_the_character_set_word() -> None:
    from core.errors import ValidationFailed
    from printing.services.settings import validate_printer

    for profile in ("gb18030", "POS-5890 gb18030", "TM-T88V GBK"):
        validate_printer(
            kind="file", connection={"devfile": "/tmp/p"}, paper_mm=58, mode="text", profile=profile
        )
    with pytest.raises(ValidationFailed):
        validate_printer(
            kind="file", connection={"devfile": "/tmp/p"}, paper_mm=58, mode="text", profile="a b"
        )


def test_what_each_character_set_prints() -> None:
    assert [printable(c, "gbk") for c in "王喆䶮𠮷😀€"] == [True, True, False, False, False, False]
    assert [printable(c, "gb18030") for c in "王喆䶮𠮷😀€"] == [True, True, True, True, False, True]
    assert not printable("\ue000", "gb18030")  # private use: no printer font has it


# --- GB18030 printers: text


def test_python_encodes_the_rare_names_as_gb18030_says() -> None:
    assert "䶮".encode("gb18030") == b"\xfe\x9f"
    assert "𠮷".encode("gb18030") == b"\x95\x34\xb2\x35"
    assert "喆".encode("gb18030") == "喆".encode("gbk") == b"\x86\xb4"
    with pytest.raises(UnicodeEncodeError):
        "䶮".encode("gbk")


@pytest.mark.parametrize("paper_mm", sorted(PAPER))
def test_a_gb18030_printer_gets_the_name_as_text(paper_mm: int) -> None:
    lines = _lines(NAME, paper_mm)
    data = render_escpos(lines, paper_mm=paper_mm, mode="text", profile="gb18030")
    assert b"\xfe\x9f" in data and b"\x95\x34\xb2\x35" in data and b"\x86\xb4" in data
    decoded = decode(data, "gb18030")
    assert len(decoded.images) == 1  # the QR code only
    texts = [line.text for line in decoded.lines]
    assert any(text.rstrip().endswith(NAME) for text in texts)
    assert all(line.columns == PAPER[paper_mm][0] for line in decoded.lines)
    assert not any("?" in text or "？" in text for text in texts)


def test_an_emoji_goes_as_an_image_even_to_a_gb18030_printer(fonts_installed: None) -> None:
    lines = _lines(EMOJI_NAME)
    decoded = decode(render_escpos(lines, paper_mm=58, mode="text", profile="gb18030"), "gb18030")
    head = lines[_head_line(lines)]
    (line_image,) = [r for r in decoded.images if r.image.height == LINE_DOTS]
    _assert_drawn(line_image.image, head.text, "赵😀")


# --- GBK-only printers: the line as an image inside the text receipt


@pytest.mark.parametrize("paper_mm", sorted(PAPER))
def test_a_gbk_printer_gets_the_rare_line_as_an_image(fonts_installed: None, paper_mm: int) -> None:
    lines = _lines(NAME, paper_mm)
    head_index = _head_line(lines)
    data = render_escpos(lines, paper_mm=paper_mm, mode="text")
    decoded = decode(data)
    # Text, then the head's line as GS v 0 raster in its place, then text again.
    assert isinstance(decoded.items[head_index], Raster)
    assert isinstance(decoded.items[head_index - 1], TextLine)
    assert isinstance(decoded.items[head_index + 1], TextLine)
    raster = decoded.items[head_index].image
    assert raster.size == (PAPER[paper_mm][1], LINE_DOTS)
    assert not any("?" in line.text or "？" in line.text for line in decoded.lines)
    _assert_drawn(raster, lines[head_index].text, "䶮𠮷喆")
    # The QR code still reads.
    assert read_qr(decoded.images[-1].image) == [SALE.receipt_no]


def test_a_rare_product_name_and_bold_title_lines_print_as_images_too(
    fonts_installed: None,
) -> None:
    data = replace(SALE, shop_name="䶮家店", lines=(ReceiptLine("𠮷祥米", 1, 5, 5),))
    lines = layout_receipt(data, columns=32)
    decoded = decode(render_escpos(lines, paper_mm=58, mode="text"))
    # The double-size title line is twice as tall; the product's line the usual height.
    heights = sorted(r.image.height for r in decoded.images)
    assert LINE_DOTS in heights and 2 * LINE_DOTS in heights
    assert not any("?" in line.text or "？" in line.text for line in decoded.lines)


def test_a_character_no_font_has_prints_as_a_box_with_its_code(fonts_installed: None) -> None:
    lines = _lines("钱" + NO_FONT_HAS)
    decoded = decode(render_escpos(lines, paper_mm=58, mode="text"))
    head = lines[_head_line(lines)]
    (line_image,) = [r for r in decoded.images if r.image.height == LINE_DOTS]
    cell = _cells(line_image.image, head.text, NO_FONT_HAS)[NO_FONT_HAS]
    # Inked: a frame and the code's digits, not an empty cell.
    ink = cell.convert("L").histogram()[0]
    assert ink > 40
    assert cell.getbbox() is not None


# --- image mode


@pytest.mark.parametrize("paper_mm", sorted(PAPER))
def test_image_mode_draws_the_rare_names(fonts_installed: None, paper_mm: int) -> None:
    lines = _lines(NAME + "😀", paper_mm)
    (raster,) = decode(render_escpos(lines, paper_mm=paper_mm, mode="image", font_path=WQY)).images
    head_index = _head_line(lines)
    top = sum(LINE_DOTS * (2 if line.double else 1) for line in lines[:head_index])
    _assert_drawn(raster.image, lines[head_index].text, "䶮𠮷喆😀", top)


# --- anything typed prints, never an exception


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=st.text(max_size=30) | st.sampled_from([NAME, EMOJI_NAME, NO_FONT_HAS]),
    product=st.text(min_size=1, max_size=40),
    charset=st.sampled_from(["", "gb18030"]),
)
def test_any_text_renders_in_both_modes(head: str, product: str, charset: str) -> None:
    require_fonts(WQY)
    lines = _lines(head, 58, product)
    text = render_escpos(lines, paper_mm=58, mode="text", profile=charset or None)
    decoded = decode(text, charset or "gbk")
    assert not any("?" in line.text and "?" not in (head + product) for line in decoded.lines)
    image = render_escpos(lines, paper_mm=58, mode="image", font_path=WQY)
    assert len(decode(image).images) == 1


def test_module_keeps_no_question_mark_fallback() -> None:
    assert not hasattr(escpos, "encode_gbk")

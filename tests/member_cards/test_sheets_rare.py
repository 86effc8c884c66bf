"""Card sheets for rare names (issue 15): every household prints, the missing as its code.

䶮 (Ext A), 𠮷 (Ext B), 喆 and an emoji are drawn by the fallback fonts, checked by
rasterising the PDF and comparing each character with the glyph of the font that has it;
a character no installed font has prints as "[U+31350]", and the command and the
household page list those households instead of refusing the village.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.fonts import font_chain
from member_cards import sheets, signing
from member_cards.cli import cards
from member_cards.sheets import CardFace
from tests.helpers.glyphs import (
    HANAMIN_A,
    HANAMIN_B,
    NO_FONT_HAS,
    WQY,
    assert_glyph,
    pdf_cells_after,
    pdf_page,
    require_fonts,
)
from tests.member_cards.conftest import County, login
from tests.member_cards.test_sheets import card_image, pages

KEYS = signing.Keyring("1", {"1": b"test-card-key"})
RARE_HEADS = {"王䶮": "䶮", "张𠮷": "𠮷", "李喆": "喆", "赵😀": "😀"}


@pytest.fixture(autouse=True)
def fonts_installed() -> None:
    require_fonts(WQY, HANAMIN_A, HANAMIN_B)


def face(head: str, n: int = 0, village: str = "郑家榜村") -> CardFace:
    return CardFace(
        payload=signing.encode(KEYS, 1000 + n, 1),
        head_name=head,
        village_name=village,
        serial=signing.card_serial(1000 + n, 1),
    )


@pytest.mark.parametrize("head", sorted(RARE_HEADS))
def test_a_rare_name_prints_with_the_glyph_of_the_font_that_has_it(head: str) -> None:
    char = RARE_HEADS[head]
    pdf = sheets.render_sheet([face(head)], font_path=WQY, title="t")
    (cell,) = pdf_cells_after(pdf, head[0], 1)
    found = font_chain(WQY).for_pdf().face_for(char)
    assert found is not None
    if char != "喆":
        assert found.path != WQY  # WenQuanYi lacks it: a fallback drew it
    assert_glyph(cell, char, found.path, index=found.index, others="王吉龚")
    assert sheets.shortfalls([face(head)], font_path=WQY) == []


def test_a_character_no_font_has_prints_as_its_code_and_the_rest_of_the_village_prints() -> None:
    heads = ["覃德华", "钱" + NO_FONT_HAS, *RARE_HEADS]
    faces = [face(head, n) for n, head in enumerate(heads)]
    pdf = sheets.render_sheet(faces, font_path=WQY, title="郑家榜村")
    _image, boxes = pdf_page(pdf, 2)
    text = "".join(char for char, _box in boxes)
    assert "钱[U+31350]" in text
    [page] = pages(pdf)
    for n, card in enumerate(faces):
        assert [f.text for f in zxingcpp.read_barcodes(card_image(page, n))] == [card.payload]
    (short,) = sheets.shortfalls(faces, font_path=WQY)
    assert (short.index, short.missing) == (1, (NO_FONT_HAS,))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=st.text(max_size=30), village=st.text(max_size=20))
def test_any_name_renders(head: str, village: str) -> None:
    pdf = sheets.render_sheet([face(head, village=village)], font_path=WQY, title=head)
    assert pdf.startswith(b"%PDF")


# --- the command and the page


def test_the_command_prints_the_village_and_lists_the_coded_names(
    runner: Any, factory: Any, county: County, tmp_path: Path
) -> None:
    factory.card(county.home)
    rare = factory.household(county.zjb, head="钱" + NO_FONT_HAS, members=("钱" + NO_FONT_HAS,))
    factory.card(rare)
    ext = factory.household(county.zjb, head="王䶮", members=("王䶮",))
    factory.card(ext)
    out = tmp_path / "zjb.pdf"
    result = runner.invoke(cards, ["sheet", "--village", "ZJB", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")
    assert len(pages(out.read_bytes())) == 1
    # One warning line for the household whose name prints with a code; 王䶮 prints whole.
    (warned,) = [line for line in result.output.splitlines() if "[U+31350]" in line]
    assert str(rare.id) in warned
    assert "王䶮" not in result.output and "覃德华" not in result.output


def test_the_household_page_lists_the_coded_names(
    client: Any, factory: Any, county: County
) -> None:
    factory.card(county.home)
    rare = factory.household(county.zjb, head="钱" + NO_FONT_HAS, members=("钱" + NO_FONT_HAS,))
    factory.card(rare)
    login(client, "cadre-zjb")
    page = client.get(f"/households/{county.home.id}").get_data(as_text=True)
    assert "钱[U+31350]" in page and "card-coded-names" in page
    sheet = client.get("/villages/ZJB/cards/sheet.pdf")
    assert sheet.status_code == 200 and sheet.mimetype == "application/pdf"


def test_no_warning_when_every_name_prints(client: Any, factory: Any, county: County) -> None:
    factory.card(county.home)
    login(client, "cadre-zjb")
    page = client.get(f"/households/{county.home.id}").get_data(as_text=True)
    assert "card-coded-names" not in page

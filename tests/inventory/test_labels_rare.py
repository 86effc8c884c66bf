"""Labels for rare names and for whatever text a product was given (issue 15, items 3 and 7).

The fuzzer's product had a unit of NEL (U+0085): its label answered 500 with
`RuntimeError: raqm_layout() failed`. Now any name or unit draws, rare characters from
the fallback fonts, checked against the glyphs of the fonts that have them.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from core.fonts import draw_text, font_chain
from inventory.labels import Label, render_label_image, render_label_sheet
from tests.helpers.glyphs import (
    HANAMIN_A,
    HANAMIN_B,
    NO_FONT_HAS,
    WQY,
    assert_glyph,
    pdf_cells_after,
    require_fonts,
)

FONT = str(WQY)
FUZZER_UNIT = "\x85"
RARE_NAMES = {"䶮": "王䶮米", "𠮷": "𠮷祥米", "喆": "喆牌油", "😀": "笑脸😀糖"}


@pytest.fixture(autouse=True)
def fonts_installed() -> None:
    require_fonts(WQY, HANAMIN_A, HANAMIN_B)


def label(name: str, price: str = "70 积分/袋") -> Label:
    return Label(name=name, price_text=price, barcode="6901234567892", sku="RICE-10")


@pytest.mark.parametrize("char", sorted(RARE_NAMES))
def test_a_rare_name_on_a_thermal_label_is_its_glyph(char: str) -> None:
    name = RARE_NAMES[char]
    image = Image.open(io.BytesIO(render_label_image(label(name), font_path=FONT)))
    # Where the name's characters fall: drawn the same way on a blank, run by run.
    chain = font_chain(FONT)
    size = image.height // 8
    pad = max(4, image.width // 40)
    prefix = name[: name.index(char)]
    blank = Image.new("L", image.size, 255)
    left = pad + draw_text(ImageDraw.Draw(blank), (pad, pad), prefix, chain, size)
    right = pad + draw_text(ImageDraw.Draw(blank), (pad, pad), prefix + char, chain, size)
    cell = image.convert("L").crop((int(left), pad, int(right) + 1, pad + size + pad // 2))
    found = chain.face_for(char)
    assert found is not None
    assert_glyph(cell, char, found.path, index=found.index, others="王吉龚")


@pytest.mark.parametrize("char", sorted(RARE_NAMES))
def test_a_rare_name_on_the_a4_sheet_is_its_glyph(char: str) -> None:
    name = RARE_NAMES[char]
    pdf = render_label_sheet([label(name)], font_path=FONT)
    anchor = name[name.index(char) - 1] if name.index(char) else None
    if anchor is None:
        # First on the line: take the cell after a known prefix instead.
        pdf = render_label_sheet([label("大" + name)], font_path=FONT)
        anchor = "大"
    (cell,) = pdf_cells_after(pdf, anchor, 1)
    found = font_chain(FONT).for_pdf().face_for(char)
    assert found is not None
    assert_glyph(cell, char, found.path, index=found.index, others="王吉龚")


def test_a_character_no_font_has_prints_as_its_code() -> None:
    pdf = render_label_sheet([label("钱" + NO_FONT_HAS)], font_path=FONT)
    assert b"%PDF" in pdf[:8]
    image = render_label_image(label("钱" + NO_FONT_HAS), font_path=FONT)
    assert image.startswith(b"\x89PNG")


def test_the_fuzzers_label_renders() -> None:
    png = render_label_image(label("大米", f"70 积分/{FUZZER_UNIT}"), font_path=FONT)
    assert Image.open(io.BytesIO(png)).size == (400, 240)


def test_the_fuzzers_product_over_the_api(app: Any, client: Any, as_admin: dict) -> None:
    created = client.post(
        "/api/v1/products",
        json={
            "sku": "FUZZ-1",
            # Kept inside: the service trims the ends of what people type.
            "name": "大\u2029米\r装",
            "unit": f"袋{FUZZER_UNIT}装",
            "points_price": 5,
            "barcode": "6901234567892",
        },
        headers=as_admin,
    )
    assert created.status_code == 201, created.get_json()
    image = client.get("/api/v1/products/FUZZ-1/label.png", headers=as_admin)
    assert (image.status_code, image.mimetype) == (200, "image/png")
    sheet = client.get("/api/v1/labels.pdf?sku=FUZZ-1", headers=as_admin)
    assert (sheet.status_code, sheet.mimetype) == (200, "application/pdf")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(min_size=1, max_size=100), unit=st.text(min_size=1, max_size=16))
def test_any_name_and_unit_render(name: str, unit: str) -> None:
    item = label(name, f"70 积分/{unit}")
    assert render_label_image(item, font_path=FONT).startswith(b"\x89PNG")
    assert render_label_sheet([item], font_path=FONT).startswith(b"%PDF")

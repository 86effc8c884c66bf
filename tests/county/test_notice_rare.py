"""The red and black list notice prints rare names from the fallback fonts, and any text at all.

Issue 15: a notice no longer refuses a village for one household head's rare character.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.fonts import font_chain
from county.notices import render_notice
from county.services import BlackList, Period, RedList
from county.services.rankings import BlackListEntry, Penalty, RankedHousehold
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

TZ = ZoneInfo("Asia/Shanghai")
NOV = Period("month", 2026, 11)


@pytest.fixture(autouse=True)
def fonts_installed() -> None:
    require_fonts(WQY, HANAMIN_A, HANAMIN_B)


def _notice(heads: list[str], reason: str = "焚烧秸秆") -> bytes:
    red = RedList(
        period=NOV,
        village=None,
        top=10,
        rows=[
            RankedHousehold(n + 1, n + 1, head, "VA", "甲村", 10, 0, 10)
            for n, head in enumerate(heads)
        ],
    )
    black = BlackList(
        period=NOV,
        village=None,
        rows=[
            BlackListEntry(
                99, heads[0], "VA", "甲村", 5, 1, 0, -5,
                [Penalty(datetime(2026, 11, 3, tzinfo=UTC), 5, reason)],
            )
        ],
    )  # fmt: skip
    return render_notice(red, black, None, font_path=WQY, tz=TZ, today=date(2026, 12, 1))


@pytest.mark.parametrize(("head", "char"), [("王䶮", "䶮"), ("张𠮷", "𠮷"), ("李喆", "喆")])
def test_rare_heads_print_as_their_glyphs(head: str, char: str) -> None:
    pdf = _notice([head])
    (cell,) = pdf_cells_after(pdf, head[0], 1)
    found = font_chain(WQY).for_pdf().face_for(char)
    assert found is not None
    assert_glyph(cell, char, found.path, index=found.index, others="王吉")


def test_a_character_no_font_has_prints_as_its_code() -> None:
    pdf = _notice(["钱" + NO_FONT_HAS, "赵😀"])
    _image, boxes = pdf_page(pdf, 2)
    assert "钱[U+31350]" in "".join(char for char, _box in boxes)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=st.text(min_size=1, max_size=30), reason=st.text(max_size=40))
def test_any_text_renders(head: str, reason: str) -> None:
    assert _notice([head], reason).startswith(b"%PDF")

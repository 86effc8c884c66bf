"""The font chain: each character from the first font that has it, the rest as its code.

And the root of the fuzzer's 500 (issue 15, item 7): raqm fails on paragraph separators;
the chain's drawing sanitizes text first and falls back to basic layout, so any text draws.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont, features

from core import fonts
from core.fonts import FontMissing, font_chain, placeholder, sanitize
from tests.helpers.glyphs import HANAMIN_A, HANAMIN_B, NO_FONT_HAS, RARE, WQY, require_fonts

# The product the fuzzer made: a unit of NEL (U+0085), on the label's price line.
FUZZER_UNIT = "\x85"
PARAGRAPH_SEPARATORS = "\r\x1c\x1d\x1e\x85\u2029"


@pytest.fixture
def chain() -> fonts.FontChain:
    require_fonts(WQY, HANAMIN_A, HANAMIN_B)
    return font_chain(WQY)


def test_the_placeholder_names_the_code_point() -> None:
    assert placeholder("䶮") == "[U+4DAE]"
    assert placeholder("𠮷") == "[U+20BB7]"
    assert placeholder("\x85") == "[U+0085]"


def test_sanitize_leaves_names_and_removes_what_breaks_layout() -> None:
    assert sanitize("王䶮𠮷喆😀") == "王䶮𠮷喆😀"
    assert sanitize("a\nb\rc\x85d\u2029e\x00f") == "a b c d e f"
    # Bidi overrides and zero-width spaces go; the joiner of an emoji sequence stays.
    assert sanitize("\u202e反\u200b转") == "反转"
    assert sanitize("👨\u200d👩") == "👨\u200d👩"
    assert sanitize("a\ud800b") == "a[U+D800]b"
    assert sanitize(42) == "42"


def test_coverage_is_ranges() -> None:
    coverage = fonts.Coverage([1, 2, 3, 7, 9, 10])
    assert [n in coverage for n in range(12)] == [
        False, True, True, True, False, False, False, True, False, True, True, False,
    ]  # fmt: skip
    assert "a" not in coverage


def test_each_character_comes_from_the_first_font_that_has_it(chain: fonts.FontChain) -> None:
    assert chain.primary.path == WQY
    assert chain.face_for("喆").path == WQY
    # WenQuanYi lacks both; the next installed fonts have them (Noto Sans CJK, else HanaMin).
    for char in "䶮𠮷":
        face = chain.face_for(char)
        assert face is not None and face.path != WQY, char
    assert chain.face_for("😀") is not None
    assert chain.face_for(NO_FONT_HAS) is None

    runs = chain.runs("王䶮喆 " + NO_FONT_HAS + "x")
    assert "".join(run.text for run in runs) == "王䶮喆 [U+31350]x"
    assert [run.face.path == WQY for run in runs if run.text in ("王", "喆 ")] == [True, True]
    (coded,) = [run for run in runs if run.missing]
    assert coded.text == "[U+31350]" and coded.face.has("[")
    assert chain.missing("王䶮" + NO_FONT_HAS + " 😀") == [NO_FONT_HAS]
    assert chain.shown("钱" + NO_FONT_HAS) == "钱[U+31350]"


def test_pdfs_use_only_fonts_reportlab_can_embed(chain: fonts.FontChain) -> None:
    pdf = chain.for_pdf()
    assert all(face.truetype for face in pdf.faces)
    assert pdf.face_for("䶮").path == HANAMIN_A
    assert pdf.face_for("𠮷") is not None


def test_a_configured_font_that_is_missing_or_no_font_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FontMissing, match="CJK_FONT_PATH"):
        font_chain(tmp_path / "nowhere.ttc")
    bogus = tmp_path / "font.ttf"
    bogus.write_bytes(b"not a font")
    with pytest.raises(FontMissing) as raised:
        font_chain(bogus)
    assert str(bogus) in str(raised.value.detail)


def test_no_font_at_all_names_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "fallback_candidates", lambda: ())
    monkeypatch.setattr(fonts, "font_candidates", lambda: (Path("/nowhere/wqy.ttc"),))
    with pytest.raises(FontMissing) as raised:
        font_chain(None)
    assert "/nowhere/wqy.ttc" in str(raised.value.detail)
    assert "fonts-hanazono" in str(raised.value.detail)


def test_required_words_name_the_character_no_font_has(chain: fonts.FontChain) -> None:
    chain.require(["长阳诚信超市", "王䶮"])
    with pytest.raises(FontMissing) as raised:
        chain.require(["户主" + NO_FONT_HAS])
    assert NO_FONT_HAS in str(raised.value.detail)


# --- the fuzzer's 500, at its root


@pytest.mark.skipif(not features.check("raqm"), reason="Pillow without raqm lays out basically")
def test_raqm_itself_fails_on_paragraph_separators() -> None:
    """Why labels answered 500: Pillow's raqm layout refuses these; the chain never sends them."""
    require_fonts(WQY)
    font = ImageFont.truetype(str(WQY), 20)
    draw = ImageDraw.Draw(Image.new("L", (200, 40), 255))
    for char in PARAGRAPH_SEPARATORS:
        with pytest.raises(RuntimeError, match="raqm_layout"):
            draw.textlength(f"70 积分/{char}", font=font)


def test_the_chain_draws_and_measures_paragraph_separators(chain: fonts.FontChain) -> None:
    draw = ImageDraw.Draw(Image.new("L", (400, 60), 255))
    for char in PARAGRAPH_SEPARATORS + "\n\x00\ufffe\uffff":
        text = f"70 积分/{char}䶮"
        assert fonts.text_width(chain, text, 20) > 0
        assert fonts.draw_text(draw, (2, 2), text, chain, 20) > 0


def test_a_layout_failure_falls_back_to_basic_layout(
    chain: fonts.FontChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fonts.image_font

    def failing(face: fonts.Face, size: int, basic: bool = False) -> object:
        font = real(face, size, basic)
        if basic:
            return font

        class Broken:
            def getlength(self, text: str) -> float:
                raise RuntimeError("raqm_layout() failed.")

            def getmetrics(self) -> tuple[int, int]:
                return font.getmetrics()

        return Broken()

    monkeypatch.setattr(fonts, "image_font", failing)
    assert fonts.text_width(chain, "大米", 20) > 0


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(max_size=40) | st.sampled_from(RARE))
def test_any_text_measures_and_draws(chain: fonts.FontChain, text: str) -> None:
    draw = ImageDraw.Draw(Image.new("L", (600, 60), 255))
    width = fonts.text_width(chain, text, 18)
    assert width >= 0
    fonts.draw_text(draw, (2, 2), text, chain, 18)
    assert fonts.pdf_width(chain.for_pdf(), text, 9) >= 0

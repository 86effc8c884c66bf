"""Card sheets: A4 pages of ten ID-1 cards whose QR codes decode and whose Chinese renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageDraw, ImageFont
from reportlab.lib.units import mm

from core import fonts
from core.errors import DomainError
from core.fonts import FontMissing
from member_cards import sheets, signing
from member_cards.sheets import CardFace
from tests.member_cards.conftest import County, login

WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DPI = 300
SCALE = DPI / 72
KEYS = signing.Keyring("1", {"1": b"test-card-key"})

needs_cjk_font = pytest.mark.skipif(not WQY.is_file(), reason="fonts-wqy-microhei not installed")


def faces(count: int, names: tuple[str, ...] = ("覃德华", "欧阳长江", "向秀英")) -> list[CardFace]:
    return [
        CardFace(
            payload=signing.encode(KEYS, 1000 + n, 1),
            head_name=names[n % len(names)],
            village_name="郑家榜村",
            serial=signing.card_serial(1000 + n, 1),
        )
        for n in range(count)
    ]


def pages(pdf: bytes) -> list[Image.Image]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [page.render(scale=SCALE).to_pil().convert("L") for page in document]
    finally:
        document.close()


def card_image(page: Image.Image, index: int) -> Image.Image:
    x, y = sheets.card_origin(index)
    top = sheets.PAGE_H - y - sheets.CARD_H
    return page.crop(
        (
            round(x * SCALE),
            round(top * SCALE),
            round((x + sheets.CARD_W) * SCALE),
            round((top + sheets.CARD_H) * SCALE),
        )
    )


def ink(image: Image.Image, *, light_on_dark: bool = False) -> Image.Image:
    """The inked pixels as a 1-bit image, cropped to their bounding box."""
    if light_on_dark:
        marks = image.point(lambda v: 255 if v > 160 else 0)
    else:
        marks = image.point(lambda v: 255 if v < 128 else 0)
    box = marks.getbbox()
    assert box, "nothing is drawn here"
    return marks.crop(box).convert("1")


def drawn_with(font: Path, text: str, size_pt: float) -> Image.Image:
    """The text as PIL draws it with this font at the sheet's resolution."""
    px = round(size_pt * SCALE)
    face = ImageFont.truetype(str(font), size=px, index=0)
    canvas = Image.new("L", (px * (len(text) + 2), px * 3), 255)
    ImageDraw.Draw(canvas).text((px, px), text, font=face, fill=0)
    return ink(canvas)


def overlap(a: Image.Image, b: Image.Image) -> float:
    """Intersection over union of two ink masks, the second scaled onto the first."""
    b = b.resize(a.size)
    both = ImageChops.logical_and(a, b).convert("L").histogram()[255]
    either = ImageChops.logical_or(a, b).convert("L").histogram()[255]
    return both / either


def test_layout_is_ten_id1_cards_on_a4() -> None:
    assert (round(sheets.PAGE_W / mm), round(sheets.PAGE_H / mm)) == (210, 297)
    assert (round(sheets.CARD_W / mm, 1), round(sheets.CARD_H / mm, 1)) == (85.6, 54.0)
    boxes = [sheets.card_origin(i) for i in range(10)]
    assert len(set(boxes)) == 10
    for x, y in boxes:
        assert x > 0 and x + sheets.CARD_W < sheets.PAGE_W
        assert y > 0 and y + sheets.CARD_H < sheets.PAGE_H
    assert {x for x, _y in boxes} == {boxes[0][0], boxes[1][0]}
    assert len({y for _x, y in boxes}) == 5


@needs_cjk_font
def test_every_card_on_every_page_decodes_to_its_payload() -> None:
    cards = faces(13)
    rendered = pages(sheets.render_sheet(cards, font_path=WQY, title="郑家榜村"))
    assert len(rendered) == 2
    for n, card in enumerate(cards):
        image = card_image(rendered[n // 10], n % 10)
        found = zxingcpp.read_barcodes(image)
        assert [f.text for f in found] == [card.payload], n
    # The unused places on the last page stay empty.
    assert zxingcpp.read_barcodes(card_image(rendered[1], 3)) == []


@needs_cjk_font
def test_chinese_renders_as_glyphs_not_boxes() -> None:
    [page] = pages(sheets.render_sheet(faces(1), font_path=WQY, title="t"))
    x, y = sheets.card_origin(0)

    def region(bottom_pt: float, top_pt: float) -> Image.Image:
        return page.crop(
            (
                round((x + sheets.PAD) * SCALE),
                round((sheets.PAGE_H - y - top_pt) * SCALE),
                round((x + sheets.QR_X) * SCALE),
                round((sheets.PAGE_H - y - bottom_pt) * SCALE),
            )
        )

    size = sheets.HEAD_SIZE
    name = ink(region(sheets.HEAD_BASELINE - 0.3 * size, sheets.HEAD_BASELINE + size))
    real = drawn_with(WQY, "覃德华", size)
    tofu = drawn_with(DEJAVU, "覃德华", size)
    assert abs(name.size[0] - real.size[0]) <= 0.05 * real.size[0]
    assert overlap(name, real) > 0.75
    assert overlap(name, tofu) < 0.5
    assert overlap(name, drawn_with(WQY, "欧阳长江", size)) < 0.5

    band = page.crop(
        (
            round(x * SCALE),
            round((sheets.PAGE_H - y - sheets.CARD_H) * SCALE),
            round((x + sheets.CARD_W) * SCALE),
            round((sheets.PAGE_H - y - sheets.CARD_H + sheets.BAND_H) * SCALE),
        )
    )
    title = ink(band, light_on_dark=True)
    assert overlap(title, drawn_with(WQY, sheets.CARD_TITLE, sheets.TITLE_SIZE)) > 0.7
    assert overlap(title, drawn_with(DEJAVU, sheets.CARD_TITLE, sheets.TITLE_SIZE)) < 0.5


@needs_cjk_font
def test_the_font_is_embedded() -> None:
    pdf = sheets.render_sheet(faces(2), font_path=WQY, title="t")
    assert b"/FontFile2" in pdf
    assert b"WenQuanYiMicroHei" in pdf


def test_a_missing_font_is_named() -> None:
    with pytest.raises(FontMissing) as raised:
        fonts.find_cjk_font("/nowhere/msyh.ttc")
    assert "/nowhere/msyh.ttc" in str(raised.value.detail)
    assert "CJK_FONT_PATH" in str(raised.value.detail)


def test_no_font_anywhere_names_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "font_candidates", lambda: (Path("/nowhere/wqy.ttc"),))
    with pytest.raises(FontMissing) as raised:
        fonts.find_cjk_font(None)
    assert "/nowhere/wqy.ttc" in str(raised.value.detail)
    assert "fonts-wqy-microhei" in str(raised.value.detail)


@needs_cjk_font
@pytest.mark.skipif(not DEJAVU.is_file(), reason="DejaVu fonts not installed")
def test_a_font_without_chinese_is_completed_by_the_installed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CJK_FONT_PATH names a Latin font: the Chinese comes from the fonts found on the machine.
    pdf = sheets.render_sheet(faces(1), font_path=DEJAVU, title="t")
    assert b"DejaVuSans" in pdf and b"WenQuanYiMicroHei" in pdf
    # With nothing else installed, the card's own words cannot print: the set-up is refused.
    monkeypatch.setattr(fonts, "fallback_candidates", lambda: ())
    with pytest.raises(FontMissing) as raised:
        sheets.render_sheet(faces(1), font_path=DEJAVU, title="t")
    assert str(DEJAVU) in str(raised.value.extra.get("font_path"))
    assert "长" in str(raised.value.detail)
    assert isinstance(raised.value, DomainError)


def test_a_file_that_is_no_font_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "font.ttf"
    bogus.write_bytes(b"not a font")
    with pytest.raises(FontMissing) as raised:
        sheets.render_sheet(faces(1), font_path=bogus, title="t")
    assert str(bogus) in str(raised.value.detail)


# --- through the pages ---------------------------------------------------------------


@needs_cjk_font
def test_household_and_village_sheets_download(
    app: Any, client: Any, factory: Any, county: County
) -> None:
    _card, payload = factory.card(county.home)
    neighbour = factory.household(county.zjb, head="向秀英", members=("向秀英",))
    _other, other_payload = factory.card(neighbour)
    login(client, "cadre-zjb")

    response = client.get(f"/households/{county.home.id}/cards/sheet.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    [page] = pages(response.data)
    assert [f.text for f in zxingcpp.read_barcodes(card_image(page, 0))] == [payload]

    response = client.get("/villages/ZJB/cards/sheet.pdf")
    assert response.status_code == 200
    [page] = pages(response.data)
    decoded = [zxingcpp.read_barcodes(card_image(page, i)) for i in range(2)]
    assert [[f.text for f in d] for d in decoded] == [[payload], [other_payload]]

    assert client.get("/villages/GJY/cards/sheet.pdf").status_code == 403
    assert client.get(f"/households/{county.away.id}/cards/sheet.pdf").status_code == 403


def test_sheet_without_a_font_says_which(
    app: Any, client: Any, factory: Any, county: County
) -> None:
    factory.card(county.home)
    app.config["CJK_FONT_PATH"] = "/nowhere/simhei.ttf"
    login(client, "cadre-zjb")
    response = client.get(f"/households/{county.home.id}/cards/sheet.pdf")
    assert response.status_code == 503
    assert "/nowhere/simhei.ttf" in response.get_data(as_text=True)


def test_sheet_of_a_household_without_a_card_is_not_found(
    client: Any, factory: Any, county: County
) -> None:
    login(client, "cadre-zjb")
    assert client.get(f"/households/{county.home.id}/cards/sheet.pdf").status_code == 404
    assert client.get("/villages/ZJB/cards/sheet.pdf").status_code == 404
    assert client.get("/villages/NOPE/cards/sheet.pdf").status_code == 404


def test_sheets_need_sign_in(client: Any, factory: Any, county: County) -> None:
    factory.card(county.home)
    response = client.get(f"/households/{county.home.id}/cards/sheet.pdf")
    assert response.status_code == 302 and "/login" in response.headers["Location"]

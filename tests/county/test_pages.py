"""The county pages: rankings for a cadre's own village, the printable notice, categories."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageChops

from accounts.auth import Role
from county.models import RuleCategory
from tests.county.conftest import County, login
from tests.helpers.pages import hidden_fields

NOV = "2026-11"
WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def text(response):
    return response.get_data(as_text=True)


def test_a_cadre_sees_their_villages_lists(client, built: County):
    login(client, built.factory.user(Role.CADRE, village="VA"))
    page = text(client.get(f"/county/rankings?period={NOV}"))
    red = page.split('id="red-list"')[1].split("</table>")[0]
    assert [name in red for name in ("甲户主", "乙户主", "戊户主", "丁户主", "丙户主")] == [
        True,
        True,
        True,
        True,
        False,
    ]
    black = page.split('id="black-list"')[1].split("</table>")[0]
    assert "丙户主" in black and "焚烧秸秆" in black
    assert "己户主" not in page  # village VB
    assert client.get(f"/county/rankings?period={NOV}&village=VB").status_code == 403
    assert client.get("/county/dashboard").status_code == 403


def test_the_county_office_sees_any_village_or_the_county(client, built: County):
    login(client, built.admin)
    county_page = text(client.get(f"/county/rankings?period={NOV}"))
    assert "己户主" in county_page and "甲户主" in county_page
    village_page = text(client.get(f"/county/rankings?period={NOV}&village=VB&top=1"))
    assert "己户主" in village_page and "甲户主" not in village_page


@pytest.mark.parametrize(
    "query",
    ["period=2026-13", "period=abc", "top=0", "top=9999", "top=x", "village=NOPE", "period=%00"],
)
def test_malformed_ranking_queries_are_refused_clearly(client, built: County, query):
    login(client, built.admin)
    response = client.get(f"/county/rankings?{query}")
    assert 400 <= response.status_code < 500
    assert client.get(f"/county/rankings/notice.pdf?{query}").status_code in (404, 422)


def test_shop_staff_see_no_rankings(client, built: County):
    login(client, built.factory.user(Role.CLERK, shop="S1"))
    assert client.get("/county/rankings").status_code == 403
    assert client.get("/county/rankings/notice.pdf").status_code == 403


def _char_images(pdf: bytes, wanted: str, scale: float = 4) -> dict[str, Image.Image]:
    """Each wanted character as rendered on the notice's first page, from its text box."""
    document = pdfium.PdfDocument(pdf)
    page = document[0]
    bitmap = page.render(scale=scale).to_pil().convert("L")
    textpage = page.get_textpage()
    height = page.get_height()
    found: dict[str, Image.Image] = {}
    for i in range(textpage.count_chars()):
        char = textpage.get_text_range(i, 1)
        if char in wanted and char not in found:
            left, bottom, right, top = textpage.get_charbox(i)
            box = (
                int(left * scale),
                int((height - top) * scale),
                int(right * scale) + 1,
                int((height - bottom) * scale) + 1,
            )
            found[char] = bitmap.crop(box).resize((48, 48))
    document.close()
    return found


@pytest.mark.skipif(not __import__("os").path.exists(WQY), reason="fonts-wqy-microhei missing")
def test_the_notice_prints_chinese_not_boxes(client, built: County):
    login(client, built.factory.user(Role.CADRE, village="VA"))
    response = client.get(f"/county/rankings/notice.pdf?period={NOV}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pdf = response.get_data()
    document = pdfium.PdfDocument(pdf)
    words = document[0].get_textpage().get_text_range()
    document.close()
    for expected in ("甲村诚信积分红黑榜", "2026年11月", "红", "黑", "甲户主", "焚烧秸秆"):
        assert expected in words.replace("\r\n", "").replace(" ", ""), expected
    assert "己户主" not in words
    # Tofu draws every missing glyph as the same box: distinct characters must look
    # distinct, and each must carry ink.
    chars = _char_images(pdf, "红黑榜村甲")
    assert set(chars) == set("红黑榜村甲")
    for image in chars.values():
        low, high = image.getextrema()
        assert high - low > 80, "a character drew no ink"
    images = list(chars.values())
    for i, a in enumerate(images):
        for b in images[i + 1 :]:
            diff = ImageChops.difference(a, b).convert("1")
            assert diff.histogram()[255] > 48 * 48 * 0.05, "two characters look alike"


def test_the_notice_without_a_font_answers_503(client, built: County, app):
    app.config["CJK_FONT_PATH"] = "/nonexistent/font.ttf"
    login(client, built.admin)
    response = client.get(f"/county/rankings/notice.pdf?period={NOV}&village=VA")
    assert response.status_code == 503


def test_admin_keeps_categories_and_thresholds_through_the_page(client, built: County, session):
    login(client, built.admin)
    page = text(client.get("/county/categories"))
    assert "生态环保" in page and "焚烧秸秆" in page
    token = hidden_fields(page)["csrf_token"]
    response = client.post(
        "/county/categories",
        data={"csrf_token": token, "code": "SAFETY", "name": "平安建设", "position": "5"},
    )
    assert response.status_code == 303
    eco = session.query(RuleCategory).filter_by(code="ECO").one()
    prefix = f"c{eco.id}-"
    response = client.post(
        "/county/categories/ECO",
        data={
            f"{prefix}csrf_token": token,
            f"{prefix}name": "生态环保",
            f"{prefix}position": "1",
            f"{prefix}active": "y",
            f"{prefix}month": "6",
            f"{prefix}quarter": "15",
            f"{prefix}year": "",
        },
    )
    assert response.status_code == 303, text(response)
    session.expire_all()
    eco = session.query(RuleCategory).filter_by(code="ECO").one()
    assert (
        eco.threshold_for("month"),
        eco.threshold_for("quarter"),
        eco.threshold_for("year"),
    ) == (
        6,
        15,
        None,
    )
    bad = client.post(
        "/county/categories/ECO",
        data={f"{prefix}csrf_token": token, f"{prefix}name": "x", f"{prefix}month": "-3"},
    )
    assert bad.status_code == 422
    missing = client.post("/county/categories/NOPE", data={"csrf_token": token})
    assert missing.status_code == 404


def test_a_cadre_may_not_change_categories(client, built: County):
    login(client, built.factory.user(Role.CADRE, village="VA"))
    page = text(client.get("/county/categories"))
    token = hidden_fields(page)["csrf_token"]
    assert client.post("/county/categories/ECO", data={"csrf_token": token}).status_code == 403
    response = client.post(
        "/county/categories", data={"csrf_token": token, "code": "X", "name": "x"}
    )
    assert response.status_code == 403


def test_pdf_bytes_open(client, built: County):
    login(client, built.admin)
    response = client.get(f"/county/rankings/notice.pdf?period={NOV}")
    assert response.status_code == 200
    assert io.BytesIO(response.get_data()).read(5) == b"%PDF-"


@pytest.mark.parametrize(
    "url",
    [
        "/county/rankings?village=%00",
        "/county/rankings?village=" + "V" * 500,
        "/county/rankings?period=%C2%B2026",
        "/county/rankings?top=%C2%B2",
        "/county/dashboard?month=2026-%00",
        "/county/dashboard?month=99999-01",
        "/county/shops/%00",
        "/county/exports/households.%00",
        "/county/exports/rankings.xlsx?period=0000",
        "/county/exports/shops/%00/stock.csv",
        "/county/exports/households/0/statement.csv",
        "/county/exports/households/99999999999/statement.csv",
        "/api/v1/county/red-list?village_code=%00",
        "/api/v1/county/red-list?period=%00",
        "/api/v1/county/dashboard?shop_code=%00",
        "/api/v1/county/dashboard?month=2026-1%00",
    ],
)
def test_garbage_never_answers_500(client, built: County, url):
    login(client, built.admin)
    headers = built.factory.headers(built.admin) if url.startswith("/api/") else {}
    response = client.get(url, headers=headers)
    assert 400 <= response.status_code < 500, (url, response.status_code)


def test_garbage_posts_never_answer_500(client, built: County):
    login(client, built.admin)
    token = hidden_fields(text(client.get("/county/categories")))["csrf_token"]
    for url, data in (
        ("/county/categories/%00", {"csrf_token": token}),
        ("/county/categories", {"csrf_token": token, "code": "A\x00", "name": "x"}),
        ("/county/categories", {"csrf_token": token, "code": "OK", "name": "x\x00"}),
        ("/county/rules/1/category", {"csrf_token": token, "r1-category": "\x00"}),
        ("/county/rules/1/category", {"csrf_token": token, "r1-category": "NOPE"}),
    ):
        response = client.post(url, data=data)
        assert 400 <= response.status_code < 500, (url, response.status_code)
    headers = built.factory.headers(built.admin)
    for body in ({"code": "X", "name": "\u0000"}, {"code": "X" * 40, "name": "x"}, [], "x"):
        response = client.post("/api/v1/rule-categories", json=body, headers=headers)
        assert 400 <= response.status_code < 500, body

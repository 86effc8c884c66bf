"""The labels page: a PDF of the ticked goods, or the page again saying in Chinese what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.labels import DEFAULT_CJK_FONT
from tests.helpers.pages import sign_in

needs_font = pytest.mark.skipif(
    not Path(DEFAULT_CJK_FONT).exists(), reason="apt-get install fonts-wqy-microhei"
)


@pytest.fixture
def signed_in(client, manager):
    sign_in(client, manager.username)
    return client


def _problem(response) -> str:
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html", page[:300]
    start = page.index('class="problem"')
    return page[start : page.index("</div>", start)]


def test_nothing_ticked_shows_the_page_again_with_a_chinese_message(signed_in, rice, oil):
    response = signed_in.get("/labels/sheet.pdf?copies=2&q=大米")
    assert response.status_code == 422
    problem = _problem(response)
    assert "请先勾选" in problem
    assert "Missing data" not in problem and "{" not in problem
    page = response.get_data(as_text=True)
    # The search and the copies are kept, so the next try is one tick away.
    assert 'value="RICE-10"' in page and 'value="OIL-5L"' not in page
    assert 'name="copies" value="2"' in page


@pytest.mark.parametrize("copies", ["0", "101", "x", "1.5"])
def test_a_bad_number_of_copies_is_named_and_the_ticks_are_kept(signed_in, rice, copies):
    response = signed_in.get(f"/labels/sheet.pdf?sku=RICE-10&copies={copies}")
    assert response.status_code == 422
    assert "1 到 100" in _problem(response)
    assert 'value="RICE-10" id="label-1" aria-label="大米 10斤" checked' in response.get_data(
        as_text=True
    )


def test_an_unknown_product_is_named_on_the_page(signed_in, rice):
    response = signed_in.get("/labels/sheet.pdf?sku=RICE-10&sku=NOPE")
    assert response.status_code == 404
    problem = _problem(response)
    assert "NOPE" in problem and "标签" in problem


@needs_font
def test_ticked_goods_make_the_pdf(signed_in, rice, oil):
    response = signed_in.get("/labels/sheet.pdf?sku=RICE-10&sku=ＯＩＬ-5L&copies=2")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    image = signed_in.get("/labels/RICE-10.png")
    assert (image.status_code, image.mimetype) == (200, "image/png")


def test_a_missing_font_is_said_on_the_page(app, signed_in, rice):
    app.config["CJK_FONT_PATH"] = "/nowhere/wqy.ttc"
    response = signed_in.get("/labels/sheet.pdf?sku=RICE-10")
    assert response.status_code == 503
    assert "/nowhere/wqy.ttc" in _problem(response)
    image = signed_in.get("/labels/RICE-10.png")
    assert image.status_code == 503 and image.mimetype == "text/html"


def test_strangers_are_sent_to_sign_in(client, rice):
    response = client.get("/labels/sheet.pdf?sku=RICE-10")
    assert response.status_code == 302 and "/login" in response.headers["Location"]

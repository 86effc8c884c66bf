"""The dashboard in headless Chromium: the charts are drawn, in Chinese, with their numbers."""

from __future__ import annotations

import pytest

from core.db import db
from tests.conftest import browser_sign_in
from tests.county.conftest import County
from tests.county.test_dashboard import shops  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # What is tested is the page as drawn; the figures run on both backends elsewhere.
    return request.param


def test_the_dashboard_draws_its_charts(live_server, page, built: County, shops):  # noqa: F811
    username = built.admin.username
    db.session.rollback()
    browser_sign_in(page, live_server, username)

    page.goto(f"{live_server}/county/dashboard")
    charts = page.locator("svg.chart")
    assert charts.count() == 5
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        box = chart.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 80, box
    # Bars are drawn with real size, and each carries its number as text beside it.
    goods = page.locator("#chart-goods svg")
    assert goods.locator("text", has_text="大米").count() == 1
    bar = goods.locator("rect.bar").first
    assert bar.get_attribute("data-value") == "7"
    assert bar.bounding_box()["width"] > 50
    assert goods.locator("text.value", has_text="7").count() >= 1
    months = page.locator("#chart-months svg")
    assert months.locator("rect.bar").count() == 36
    # Chinese glyphs lay out wider than a missing-glyph box would for the same string.
    width = page.evaluate(
        "() => { const t = [...document.querySelectorAll('#chart-goods svg text')]"
        ".find(e => e.textContent === '大米'); return t.getBBox().width; }"
    )
    assert width > 15
    shot = page.locator("#chart-stock svg").screenshot()
    assert len(shot) > 2000
    assert page.locator("#kpi-redeemed").inner_text().strip().isdigit()

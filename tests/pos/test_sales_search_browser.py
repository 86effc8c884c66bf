"""The sales page in headless Chromium: a clerk types a name, or scans a card, and Enter."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from tests.conftest import browser_sign_in
from tests.pos.conftest import Counter, sale_body

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_a_clerk_finds_sales_by_name_and_by_card(
    live_server: str, page: Any, counter: Counter, client: Any
) -> None:
    sold = client.post(
        "/api/v1/shops/GJY/sales",
        json=sale_body(counter, {"sku": "SOAP", "qty": 1}),
        headers=counter.clerk_headers,
    ).get_json()
    username, payload = counter.clerk.username, counter.payload
    db.session.rollback()
    browser_sign_in(page, live_server, username)
    page.goto(f"{live_server}/shops/GJY/sales")

    page.keyboard.insert_text("德华")  # what an input method commits
    page.keyboard.press("Enter")
    page.wait_for_url("**/shops/GJY/sales?q=*")
    assert sold["receipt_no"] in page.inner_text("table.data")

    page.fill("#q", "")
    page.locator("#q").type(payload.lower(), delay=2)  # a scanner with Caps Lock on
    page.keyboard.press("Enter")
    page.wait_for_url("**/shops/GJY/sales?q=ic1.*")
    assert sold["receipt_no"] in page.inner_text("table.data")
    assert "有效" in page.inner_text("[data-search-kind]")

    page.fill("#q", "王五")
    page.keyboard.press("Enter")
    page.locator("[data-nothing-found]").wait_for()
    assert "没有找到与“王五”相符的交易" in page.inner_text("[data-nothing-found]")

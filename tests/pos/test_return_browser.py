"""A return in headless Chromium: the manager scans the receipt, types what came back, done."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from tests.conftest import browser_sign_in
from tests.pos.conftest import Counter, balance, on_hand, sale_body

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_a_manager_scans_a_receipt_and_takes_goods_back(
    live_server: str, page: Any, counter: Counter, client: Any
) -> None:
    sold = client.post(
        "/api/v1/shops/GJY/sales",
        json=sale_body(counter, {"sku": "RICE-10", "qty": 2}, {"sku": "SOAP", "qty": 1}),
        headers=counter.clerk_headers,
    ).get_json()
    username = counter.manager.username
    db.session.rollback()
    browser_sign_in(page, live_server, username)
    page.goto(f"{live_server}/shops/GJY/sales")
    # The search box has focus by the time the page has loaded (a scanner's first
    # keystroke must not be lost): it types the receipt's code and Enter.
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type(sold["receipt_no"], delay=2)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/sales/{sold['sale_id']}")

    page.fill("#return-form input[name=qty] >> nth=0", "1")
    page.fill("#return-reason", "米袋破了")
    page.click("#return-form button[type=submit]")
    page.locator(".flash").filter(has_text="70").wait_for()
    assert "米袋破了" in page.inner_text(".sale-returns")
    assert balance(counter.household) == 300 - 145 + 70
    assert on_hand(counter.shop, counter.rice) == 19

    # Asking for more than is left is refused on the page, and nothing moves.
    page.fill("#return-form input[name=qty] >> nth=0", "5")
    page.fill("#return-reason", "again")
    page.click("#return-form button[type=submit]")
    page.locator(".problem").wait_for()
    assert balance(counter.household) == 300 - 145 + 70

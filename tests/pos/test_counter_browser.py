"""The counter in headless Chromium: a clerk serves customers with a scanner and Enter alone."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from tests.conftest import browser_sign_in
from tests.pos.conftest import Counter, balance, on_hand

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # What is tested is the page and its script; the services run on both backends elsewhere.
    return request.param


def scan(page: Any, code: str) -> None:
    """What a keyboard-wedge scanner does: type the code fast, then Enter."""
    page.keyboard.type(code, delay=2)
    page.keyboard.press("Enter")


def _open_counter(page: Any, live_server: str, username: str) -> None:
    browser_sign_in(page, live_server, username)
    page.goto(f"{live_server}/counter")
    assert page.evaluate("document.activeElement.matches('[data-scan]')")


def test_a_clerk_sells_with_scanner_and_enter_then_an_unaffordable_cart_is_refused(
    live_server: str, page: Any, counter: Counter
) -> None:
    username, payload = counter.clerk.username, counter.payload
    rice_code, oil_code = counter.rice.barcode, counter.oil.barcode
    # On SQLite even a read holds the write lock until the transaction ends.
    db.session.rollback()
    _open_counter(page, live_server, username)

    scan(page, payload)
    page.locator("[data-customer] [data-head]").filter(has_text="覃德华").wait_for()
    assert page.inner_text("[data-spendable]") == "300"
    scan(page, rice_code)
    page.locator("[data-lines] tr[data-sku='RICE-10']").wait_for()
    scan(page, oil_code)
    page.locator("[data-lines] tr[data-sku='OIL-5L']").wait_for()
    scan(page, "6909999999994")
    page.locator("[data-status].status-error").filter(has_text="6909999999994").wait_for()
    assert page.locator("[data-lines] tr").count() == 2
    assert page.inner_text("[data-total]") == "190"
    assert page.inner_text("[data-remaining]") == "110"
    assert page.evaluate("document.activeElement.matches('[data-scan]')")

    page.keyboard.press("Enter")  # Enter on the empty scan field confirms
    receipt = page.locator("[data-receipt]")
    # The committed sale's summary at once, then the server's own layout of the receipt.
    receipt.filter(has_text="大米 10斤").wait_for()
    text = receipt.inner_text()
    assert "大米 10斤" in text and "菜籽油 5升" in text and "190" in text and "110" in text
    assert page.inner_text("[data-remaining]") == "110"
    assert balance(counter.household) == 110
    assert on_hand(counter.shop, counter.rice) == 19
    assert on_hand(counter.shop, counter.oil) == 9

    # The sale stays on screen until the next card (the same household again).
    page.keyboard.press("Enter")
    assert receipt.is_visible()
    scan(page, payload)
    receipt.wait_for(state="hidden")
    page.locator("[data-spendable]").filter(has_text="110").wait_for()
    scan(page, oil_code)
    page.locator("[data-lines] tr[data-sku='OIL-5L']").wait_for()
    shortfall = page.locator("[data-shortfall]")
    shortfall.filter(has_text="10").wait_for()
    page.keyboard.press("Enter")
    page.locator("[data-status].status-error").filter(has_text="10").wait_for()
    assert receipt.is_hidden()
    assert balance(counter.household) == 110
    assert on_hand(counter.shop, counter.oil) == 9

    # Removing the line by keyboard clears the shortfall; a bar of soap is affordable.
    page.keyboard.press("Delete")
    shortfall.wait_for(state="hidden")
    scan(page, "SOAP")
    page.locator("[data-lines] tr[data-sku='SOAP']").wait_for()
    page.keyboard.press("+")
    page.wait_for_function(
        "document.querySelector('[data-lines] tr[data-sku=\"SOAP\"] [data-qty]').value === '2'"
    )
    page.keyboard.press("Enter")
    receipt.filter(has_text="GJY-").wait_for()
    assert balance(counter.household) == 100


def test_a_lost_answer_is_retried_with_the_same_key_and_charged_once(
    live_server: str, page: Any, counter: Counter
) -> None:
    username, payload, rice_code = counter.clerk.username, counter.payload, counter.rice.barcode
    db.session.rollback()
    _open_counter(page, live_server, username)
    keys: list[str] = []

    def lose_first_answer(route: Any) -> None:
        keys.append(route.request.post_data_json["idempotency_key"])
        if len(keys) == 1:
            # The server commits the sale, but its answer never reaches the counter.
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/shops/GJY/sales", lose_first_answer)
    scan(page, payload)
    page.locator("[data-spendable]").filter(has_text="300").wait_for()
    scan(page, rice_code)
    page.locator("[data-lines] tr[data-sku='RICE-10']").wait_for()
    page.keyboard.press("Enter")
    page.locator("[data-receipt]").filter(has_text="GJY-").wait_for()
    assert len(keys) == 2 and keys[0] == keys[1]
    assert balance(counter.household) == 230
    assert on_hand(counter.shop, counter.rice) == 19

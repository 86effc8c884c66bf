"""Receiving a delivery in headless Chromium: a scanner types codes and presses Enter."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from tests.conftest import browser_sign_in
from tests.inventory.helpers import on_hand

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # What is tested is the page and its script; the services run on both backends elsewhere.
    return request.param


def scan(page: Any, code: str) -> None:
    """What a keyboard-wedge scanner does: type the digits fast, then Enter."""
    page.locator("[data-scan]").type(code, delay=5)
    page.keyboard.press("Enter")


def test_receiving_by_scanner_alone(live_server, page, factory, shop, rice, oil, manager):
    username, code, rice_code, oil_code = manager.username, shop.code, rice.barcode, oil.barcode
    # On SQLite even a read holds the write lock until the transaction ends: end the test's
    # own, or the server would wait for it.
    db.session.rollback()
    browser_sign_in(page, live_server, username)

    page.goto(f"{live_server}/shops/{code}/stock/receive")
    page.fill("input[name=reference]", "送货单 2026-118")
    page.focus("[data-scan]")
    lines = page.locator("[data-lines] tr")

    scan(page, rice_code)
    scan(page, oil_code)
    scan(page, rice_code)
    page.wait_for_function(
        "document.querySelector('[data-lines] tr[data-sku=\"RICE-10\"] input[name=qty]')"
        "?.value === '2'"
    )
    assert lines.count() == 2

    scan(page, "6909999999994")
    status = page.locator("[data-scan-status]")
    status.filter(has_text="6909999999994").wait_for()
    assert "scan-error" in (status.get_attribute("class") or "")
    # The unknown code added nothing and took nothing away.
    assert lines.count() == 2
    assert page.input_value("[data-lines] tr[data-sku='OIL-5L'] input[name=qty]") == "1"
    assert page.evaluate("document.activeElement.matches('[data-scan]')")

    page.keyboard.press("Enter")  # Enter on the empty scan field saves
    page.wait_for_url(f"{live_server}/shops/{code}/stock/operations/*")
    assert "送货单 2026-118" in page.content()
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (2, 1)

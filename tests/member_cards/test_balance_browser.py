"""The balance page in headless Chromium: a scanner types a card and Enter; points, then nothing."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from tests.member_cards.conftest import County

pytestmark = [
    pytest.mark.browser,
    # One backend is enough to drive a page; the services are tested on both.
    pytest.mark.parametrize("backend", ["sqlite"]),
]


@pytest.fixture
def browser_page(page: Any) -> Any:
    return page


def focused_id(page: Any) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_scan_shows_the_balance_then_clears(
    app: Any, live_server: str, browser_page: Any, factory: Any, county: County
) -> None:
    app.config["CARD_BALANCE_CLEAR_SECONDS"] = 1
    _card, payload = factory.card(county.away)
    # SQLite: the test's own session must not hold the write lock the server needs.
    db.session.rollback()
    page = browser_page
    page.goto(f"{live_server}/balance")
    page.wait_for_selector("[data-idle]")
    assert focused_id(page) == "balance-payload"

    # A keyboard-wedge scanner: keystrokes into whatever has the focus, then Enter.
    page.keyboard.type(payload, delay=2)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-found]")
    assert page.inner_text(".balance-name") == "田建国"
    assert page.inner_text("[data-spendable]") == "200"
    assert page.inner_text("[data-score]") == "300"
    assert page.locator(".balance-entries tbody tr").count() == 1
    assert page.input_value("#balance-payload") == ""
    assert focused_id(page) == "balance-payload"

    page.wait_for_selector("[data-idle]", timeout=5_000)
    assert page.locator("[data-found]").count() == 0
    assert "田建国" not in page.content()

    # Touching the screen does not lose the scanner's field.
    page.mouse.click(5, 5)
    assert focused_id(page) == "balance-payload"


def test_an_altered_card_shows_only_a_plain_message(
    app: Any, live_server: str, browser_page: Any, factory: Any, county: County
) -> None:
    app.config["CARD_BALANCE_CLEAR_SECONDS"] = 1
    _card, payload = factory.card(county.home)
    # SQLite: the test's own session must not hold the write lock the server needs.
    db.session.rollback()
    page = browser_page
    page.goto(f"{live_server}/balance")
    page.wait_for_selector("[data-idle]")
    page.keyboard.type(payload[:-1] + ("A" if payload[-1] != "A" else "B"))
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-refused]")
    assert "覃德华" not in page.content()
    page.wait_for_selector("[data-idle]", timeout=5_000)

    # The next villager's genuine scan works straight after.
    page.keyboard.type(payload)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-found]")
    assert page.inner_text(".balance-name") == "覃德华"

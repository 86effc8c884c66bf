"""A stock take in headless Chromium: one Enter shows the differences, a second saves them."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from tests.conftest import browser_sign_in
from tests.inventory import helpers

pytestmark = pytest.mark.browser

REVIEW = "[data-count-review]"


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # What is tested is the page and its script; the services run on both backends elsewhere.
    return request.param


@pytest.fixture
def count_page(
    live_server: str, page: Any, factory: Any, shop: Any, rice: Any, oil: Any, manager: Any
) -> str:
    factory.receive(shop, (rice, 10), (oil, 5))
    username, code = manager.username, shop.code
    # On SQLite a read holds the write lock until the transaction ends: end the test's own.
    db.session.rollback()
    browser_sign_in(page, live_server, username)
    page.goto(f"{live_server}/shops/{code}/stock/count")
    return f"{live_server}/shops/{code}/stock/count"


def on_hand(shop: Any, product: Any) -> int:
    # Ended at once: on SQLite the read began IMMEDIATE and would hold off the server.
    try:
        return helpers.on_hand(shop, product)
    finally:
        db.session.rollback()


def movement_count() -> int:
    try:
        return helpers.movement_count()
    finally:
        db.session.rollback()


def scan(page: Any, code: str) -> None:
    page.locator("[data-scan]").type(code, delay=5)
    page.keyboard.press("Enter")


def counted(page: Any, sku: str) -> Any:
    return page.locator(f".count-sheet tr[data-sku='{sku}'] input[name=counted]")


def test_one_enter_shows_the_differences_and_a_second_saves_them(
    count_page: str, page: Any, shop: Any, rice: Any, oil: Any
) -> None:
    moves = movement_count()
    counted(page, "RICE-10").fill("7")
    counted(page, "OIL-5L").fill("5")
    page.focus("[data-scan]")
    assert page.locator(REVIEW).is_hidden()

    page.keyboard.press("Enter")  # Enter on the empty scan field: check, do not save
    page.locator(REVIEW).wait_for(state="visible")
    rows = page.locator("[data-review-lines] tr")
    assert rows.count() == 1
    assert rows.nth(0).inner_text().split() == ["RICE-10", "大米", "10斤", "10", "7", "-3"]
    assert "有 1 种商品与账面不符" in page.inner_text("[data-scan-status]")
    page.wait_for_timeout(300)
    assert page.url == count_page
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (10, 5)
    assert movement_count() == moves

    page.wait_for_timeout(500)  # read them; then Enter again saves
    page.keyboard.press("Enter")
    page.wait_for_url("**/stock/operations/*")
    assert "已保存。库存已改为实点数。" in page.inner_text(".flash")
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (7, 5)


def test_a_double_enter_does_not_save_the_differences(
    count_page: str, page: Any, shop: Any, rice: Any
) -> None:
    scan(page, rice.barcode)
    scan(page, rice.barcode)
    from playwright.sync_api import expect

    expect(counted(page, "RICE-10")).to_have_value("2")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # a bounce, or a habit: not a reading of the differences
    page.locator(REVIEW).wait_for(state="visible")
    page.wait_for_timeout(600)
    assert page.url == count_page
    assert on_hand(shop, rice) == 10
    assert "请先看清差异" in page.inner_text("[data-scan-status]")

    page.keyboard.press("Enter")
    page.wait_for_url("**/stock/operations/*")
    assert on_hand(shop, rice) == 2


def test_changing_a_count_takes_the_differences_back_to_be_checked_again(
    count_page: str, page: Any, shop: Any, rice: Any
) -> None:
    counted(page, "RICE-10").fill("7")
    page.focus("[data-scan]")
    page.keyboard.press("Enter")
    page.locator(REVIEW).wait_for(state="visible")

    counted(page, "RICE-10").fill("8")
    page.locator(REVIEW).wait_for(state="hidden")
    page.focus("[data-scan]")
    page.keyboard.press("Enter")  # shows the corrected difference, does not save
    page.locator(REVIEW).wait_for(state="visible")
    assert page.locator("[data-review-lines] tr").nth(0).inner_text().split()[-1] == "-2"
    page.wait_for_timeout(500)
    assert on_hand(shop, rice) == 10

    page.click("[data-confirm-save]")
    page.wait_for_url("**/stock/operations/*")
    assert on_hand(shop, rice) == 8


def test_a_count_that_matches_the_books_saves_on_the_first_enter(
    count_page: str, page: Any, shop: Any, rice: Any
) -> None:
    counted(page, "RICE-10").fill("10")
    page.focus("[data-scan]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/stock/operations/*")
    assert "所有实点数与账面一致" in page.inner_text(".flash")
    assert on_hand(shop, rice) == 10


def test_without_the_script_the_server_asks_and_enter_confirms(
    browser: Any, live_server: str, factory: Any, shop: Any, rice: Any, oil: Any, manager: Any
) -> None:
    factory.receive(shop, (rice, 10), (oil, 5))
    username, code = manager.username, shop.code
    db.session.rollback()
    context = browser.new_context(java_script_enabled=False, locale="zh-CN")
    try:
        page = context.new_page()
        browser_sign_in(page, live_server, username)
        page.goto(f"{live_server}/shops/{code}/stock/count")
        counted(page, "RICE-10").fill("7")
        counted(page, "RICE-10").press("Enter")  # the form's own submission
        page.wait_for_load_state()
        page.locator(REVIEW).wait_for(state="visible")
        assert on_hand(shop, rice) == 10
        page.locator("input[name=reference]").press("Enter")  # Enter again: confirmed
        page.wait_for_url("**/stock/operations/*")
        assert on_hand(shop, rice) == 7
    finally:
        context.close()

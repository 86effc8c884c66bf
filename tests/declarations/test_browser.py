"""Headless Chromium: a group leader declares from a 390 px phone, a cadre approves by Enter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.db import db
from ledger import services as ledger
from tests.conftest import browser_sign_in, require_chromium
from tests.declarations.conftest import declare, photo

require_chromium()

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # The pages are the same on every backend; the API and view tests cover PostgreSQL.
    return request.param


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert not refused, f"the page broke its Content-Security-Policy: {refused}"


def _no_sideways_scrolling(page: Any) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"


def test_a_group_leader_declares_from_a_390_px_phone(phone, live_server, village):
    village.users["reporter"]
    db.session.commit()
    browser_sign_in(phone, live_server, "leader-zjb")
    assert phone.url.endswith("/declarations/new")
    _no_sideways_scrolling(phone)

    phone.fill("#q", "覃德华")
    phone.press("#q", "Enter")
    phone.wait_for_url("**/declarations/new?q=*")
    _no_sideways_scrolling(phone)
    phone.locator("#results a", has_text="覃德华").click()
    phone.wait_for_url("**/declarations/new?household=*")
    _no_sideways_scrolling(phone)

    camera = phone.locator("#photo-1")
    assert camera.get_attribute("accept") == "image/*"
    assert camera.get_attribute("capture") == "environment"
    # The persons field shows for a per-person deed only.
    phone.select_option("select[name=rule_code]", "ROAD")
    assert phone.is_hidden("#field-persons")
    phone.select_option("select[name=rule_code]", "VOLUNTEER")
    assert phone.is_visible("#field-persons")
    phone.fill("input[name=persons]", "2")
    assert phone.is_hidden("#photo-2")
    camera.set_input_files(
        files=[{"name": "IMG_0001.JPG", "mimeType": "image/jpeg", "buffer": photo(31, (640, 480))}]
    )
    phone.wait_for_selector("#photo-previews img")
    assert phone.is_visible("#photo-2")
    phone.fill("textarea[name=note]", "帮五保户挑水")
    _no_sideways_scrolling(phone)
    phone.screenshot(path="/tmp/declaration-phone.png", full_page=True)
    phone.click("button.decl-send")
    phone.wait_for_selector(".flash-success")
    assert "已提交" in phone.inner_text(".flash-success")
    _no_sideways_scrolling(phone)

    phone.goto(f"{live_server}/declarations")
    assert "参加志愿服务" in phone.inner_text("table.decl-list")
    phone.goto(f"{live_server}/declarations/public/ZJB")
    phone.screenshot(path="/tmp/declaration-public.png", full_page=True)
    _no_sideways_scrolling(phone)


def test_a_cadre_approves_from_the_queue_with_enter(page, live_server, client, village):
    first = declare(client, village.headers["reporter"], household_id=village.home_id, persons=3)
    second = declare(
        client, village.headers["reporter"], household_id=village.other_home_id, photos=[photo(7)]
    )
    village.users["cadre"]
    ids = (first.json["id"], second.json["id"])
    db.session.commit()
    browser_sign_in(page, live_server, "cadre-zjb")
    page.goto(f"{live_server}/declarations/review")
    assert page.get_attribute("#review", "data-declaration") == str(ids[0])
    assert page.inner_text("#points") == "+6 分"
    assert page.locator(".decl-photo-main img").evaluate("img => img.naturalWidth") > 0
    assert page.evaluate("() => document.activeElement.id") == "approve"

    page.keyboard.press("Enter")
    page.wait_for_selector(".flash-success")
    assert f"第 {ids[0]} 号申报已批准" in page.inner_text(".flash-success")
    # The next one comes up; Enter anywhere off a field approves it too.
    assert page.get_attribute("#review", "data-declaration") == str(ids[1])
    page.click("h1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#queue-empty")
    page.screenshot(path="/tmp/declaration-review.png", full_page=True)

    db.session.rollback()
    assert ledger.get_household(db.session, village.home_id).account.balance == 6
    assert ledger.get_household(db.session, village.other_home_id).account.balance == 2
    db.session.rollback()


def test_the_review_page_fits_a_phone_too(phone, live_server, client, village):
    declare(client, village.headers["reporter"], household_id=village.home_id)
    copy = declare(client, village.headers["reporter"], household_id=village.other_home_id)
    assert copy.json["duplicate_of"]
    village.users["cadre"]
    db.session.commit()
    browser_sign_in(phone, live_server, "cadre-zjb")
    phone.goto(f"{live_server}/declarations/review?id={copy.json['id']}")
    assert phone.is_visible("#duplicate-warning")
    _no_sideways_scrolling(phone)
    phone.screenshot(path="/tmp/declaration-review-phone.png", full_page=True)
    phone.fill("input[name=reason]", "同一张照片")
    phone.locator("#reject-form button[type=submit]").click()
    phone.wait_for_selector(".flash-info")
    _no_sideways_scrolling(phone)

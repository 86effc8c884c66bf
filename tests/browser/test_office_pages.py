"""A cadre's day in a real browser: find a household, post an award, import a spreadsheet."""

from __future__ import annotations

import re
from typing import Any

import pytest

from accounts.auth import Role
from core.db import db
from tests.conftest import browser_sign_in, require_chromium

require_chromium()

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/household.png"


@pytest.fixture
def village(factory: Any) -> dict[str, Any]:
    zjb = factory.village("ZJB", name="郑家榜村")
    factory.rule("VOLUNTEER", 2, "person", title="参加志愿服务")
    factory.rule("STRAW_BURN", -5, "household", title="焚烧秸秆")
    home = factory.household(zjb, head="覃德华", members=("覃德华", "向秀英", "覃小红"), balance=10)
    factory.household(zjb, head="田建国", members=("田建国", "李春梅"), balance=30)
    factory.user(Role.CADRE, village="ZJB", username="cadre-zjb")
    ids = {"home": home.id}
    # SQLite: every transaction begins IMMEDIATE, so the test must not sit on one while
    # the server (another connection) writes.
    db.session.commit()
    return ids


def test_cadre_finds_a_household_and_posts_an_award(page, live_server, village):
    browser_sign_in(page, live_server, "cadre-zjb")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "村干部" in page.inner_text("header")

    page.fill("input[name=q]", "覃德华")
    page.click("form[role=search] button[type=submit]")
    rows = page.locator("table.households tbody tr")
    assert rows.count() == 1
    assert "田建国" not in page.inner_text("table.households")
    rows.first.get_by_role("link", name="覃德华").click()

    page.wait_for_url(re.compile(rf".*/households/{village['home']}$"))
    assert page.inner_text("#balance") == "10"
    # Choosing a per-person rule brings up the persons field and puts away the points one.
    assert page.is_hidden("#field-persons")
    page.select_option("select[name=rule_code]", "VOLUNTEER")
    assert page.is_visible("#field-persons") and page.is_hidden("#field-points")
    page.fill("input[name=persons]", "2")
    # A double click must not record twice.
    page.dblclick("#post-award button[type=submit]")
    page.wait_for_load_state()

    flash = page.locator(".flash-success").inner_text()
    assert "+4" in flash and "当前余额 14" in flash
    assert page.inner_text("#balance") == "14"
    first = page.locator(".statement tbody tr").first.inner_text()
    assert "奖励" in first and "+4" in first and "14" in first and "参加志愿服务" in first
    assert page.locator(".statement tbody tr").count() == 2

    page.screenshot(path=SCREENSHOT, full_page=True)


def test_switching_to_english_and_back(page, live_server, village):
    browser_sign_in(page, live_server, "cadre-zjb")
    page.goto(f"{live_server}/households/{village['home']}")
    assert "家庭诚信档案" in page.inner_text("main")

    page.click("a.lang")
    # The click returns once the new page is committed, not parsed: wait for all of it.
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    body = page.inner_text("body")
    assert "Family integrity file" in body and "Award or penalty" in body
    assert "Village cadre" in body and "Sign out" in body
    # The choice holds on the next page, until switched back.
    page.click("nav.mainnav >> text=Point rules")
    assert page.inner_text("h1") == "Point rules"
    page.click("a.lang")
    assert page.inner_text("h1") == "积分规则"


def test_csv_upload_with_a_bad_line_shows_each_line(page, live_server, village):
    browser_sign_in(page, live_server, "cadre-zjb")
    page.click("nav.mainnav >> text=批量导入")
    body = (
        "household_id,rule_code,persons,reason,idempotency_key\r\n"
        f"{village['home']},VOLUNTEER,2,打扫村道,web-1\r\n"
        "999999,VOLUNTEER,1,,web-2\r\n"
    ).encode("utf-8-sig")
    page.set_input_files(
        "input[type=file]", files=[{"name": "积分.csv", "mimeType": "text/csv", "buffer": body}]
    )
    page.click("form[enctype] button[type=submit]")

    result = page.locator("#import-result")
    assert result.locator("#created").inner_text() == "1"
    assert result.locator("#failed").inner_text() == "1"
    error = result.locator("table.errors tbody tr").first.inner_text()
    assert error.startswith("3") and "没有编号为 999999 的农户" in error and "999999" in error
    lines = result.locator("table.lines tbody tr")
    assert lines.count() == 2
    assert "已记入" in lines.nth(0).inner_text() and "未记入" in lines.nth(1).inner_text()

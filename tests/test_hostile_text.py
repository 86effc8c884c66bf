"""Hostile text in every field people type: names, products, reasons. It stays text everywhere.

Markup is escaped on pages (and runs no script in a real browser), SQL is data, control
characters never reach the printer, and spreadsheet formulas stay inert in exports.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db
from tests.conftest import browser_sign_in
from tests.factories import Factory
from tests.helpers.pages import sign_in

SCRIPT = "<script>alert(1)</script>"
IMAGE = '<img src=x onerror="alert(2)">'
SQL = "'; DROP TABLE households; --"
FORMULA = '=HYPERLINK("http://evil","点我")'
ESCAPE = "\x1b@\x1dVA\x03米"  # ESC/POS reset and cut, hidden in a product name


@pytest.fixture
def hostile(app: Any, factory: Factory) -> dict[str, Any]:
    village = factory.village("ZJB", name=f"村{SCRIPT}")
    household = factory.household(village, head=SCRIPT, members=(SCRIPT, SQL, FORMULA), balance=900)
    _card, payload = factory.card(household)
    shop = factory.shop("GJY", name=f"店{IMAGE}")
    evil = factory.product("EVIL", name=IMAGE, points_price=5, barcode="6901234567892")
    formula = factory.product("FORM", name=FORMULA, points_price=5)
    escape = factory.product("ESC", name=ESCAPE, points_price=5)
    factory.receive(shop, (evil, 20), (formula, 20), (escape, 20))
    manager = factory.user("manager", shop="GJY", username="manager-gjy")
    db.session.commit()
    return {
        "household": household.id,
        "payload": payload,
        "manager": manager,
        "admin_headers": factory.headers(factory.admin),
        "manager_headers": factory.headers(manager),
    }


def _sell(client: Any, hostile: dict[str, Any], reason: str = SCRIPT) -> dict[str, Any]:
    sold = client.post(
        "/api/v1/shops/GJY/sales",
        json={
            "household_id": hostile["household"],
            "lines": [
                {"sku": "EVIL", "qty": 1},
                {"sku": "FORM", "qty": 1},
                {"sku": "ESC", "qty": 1},
            ],
            "idempotency_key": "hostile-sale",
        },
        headers=hostile["manager_headers"],
    )
    assert sold.status_code == 201, sold.get_json()
    data = sold.get_json()
    back = client.post(
        f"/api/v1/sales/{data['sale_id']}/returns",
        json={"lines": [{"sku": "EVIL", "qty": 1}], "reason": reason, "idempotency_key": "r1"},
        headers=hostile["manager_headers"],
    )
    assert back.status_code == 201, back.get_json()
    return data


def test_pages_escape_markup(client, hostile, factory):
    sale = _sell(client, hostile)
    sign_in(client, factory.admin.username)
    pages = [
        f"/households/{hostile['household']}",
        "/households",
        "/villages",
        f"/sales/{sale['sale_id']}",
        "/shops/GJY/reports/daily",
        "/shops/GJY/stock",
        "/audit",
        "/county/rankings",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        for raw in (SCRIPT, IMAGE):
            assert raw not in html, f"{url} carries raw markup {raw}"
    household = client.get(f"/households/{hostile['household']}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in household


def test_sql_in_searches_is_just_text(client, hostile):
    headers = hostile["admin_headers"]
    found = client.get("/api/v1/households", query_string={"q": SQL}, headers=headers)
    assert found.status_code == 200
    products = client.get("/api/v1/products", query_string={"q": "' OR '1'='1"}, headers=headers)
    assert products.status_code == 200 and products.get_json()["products"] == []
    # The table is still there, with its household.
    again = client.get(f"/api/v1/households/{hostile['household']}", headers=headers)
    assert again.status_code == 200 and again.get_json()["head_name"] == SCRIPT


def test_receipts_carry_no_printer_commands_from_names(client, hostile):
    sale = _sell(client, hostile)
    headers = hostile["manager_headers"]
    text = client.get(
        f"/api/v1/sales/{sale['sale_id']}/receipt", query_string={"format": "text"}, headers=headers
    ).get_data(as_text=True)
    assert "\x1b" not in text and "\x1d" not in text and "\x03" not in text
    raw = client.get(
        f"/api/v1/sales/{sale['sale_id']}/receipt",
        query_string={"format": "escpos", "mode": "text"},
        headers=headers,
    ).get_data()
    # The only reset is ours at the start and the only cut ours at the end.
    assert raw.count(b"\x1b@") == 1 and raw.count(b"\x1dV") == 1


def test_exports_and_pdfs_keep_formulas_and_markup_inert(client, hostile, factory):
    sale = _sell(client, hostile)
    receipt_day = sale["receipt_no"].split("-")[1]
    day = f"{receipt_day[:4]}-{receipt_day[4:6]}-{receipt_day[6:]}"
    sign_in(client, factory.admin.username)
    households = client.get("/county/exports/households.csv").get_data(as_text=True)
    assert FORMULA not in households.replace("'" + FORMULA, "")
    report = client.get(
        "/api/v1/shops/GJY/reports/daily",
        query_string={"format": "csv", "date": day},
        headers=hostile["manager_headers"],
    ).get_data(as_text=True)
    assert "'=HYPERLINK" in report
    sheet = client.get(f"/households/{hostile['household']}/cards/sheet.pdf")
    assert sheet.status_code == 200 and sheet.mimetype == "application/pdf"
    notice = client.get("/county/rankings/notice.pdf")
    assert notice.status_code == 200 and notice.mimetype == "application/pdf"


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_script_runs_in_a_real_browser(live_server, page, hostile, factory, client):
    _sell(client, hostile)
    username = factory.admin.username
    manager = hostile["manager"].username
    household = hostile["household"]
    db.session.rollback()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    browser_sign_in(page, live_server, username)
    for url in (f"/households/{household}", "/households", "/shops/GJY/reports/daily", "/audit"):
        page.goto(live_server + url)
        page.wait_for_load_state("load")
    page.goto(f"{live_server}/logout")
    page.context.clear_cookies()
    browser_sign_in(page, live_server, manager)
    page.goto(f"{live_server}/counter")
    page.keyboard.type(hostile["payload"], delay=2)
    page.keyboard.press("Enter")
    page.locator("[data-customer] [data-head]").filter(has_text="<script>").wait_for()
    page.keyboard.type("6901234567892", delay=2)
    page.keyboard.press("Enter")
    row = page.locator("[data-lines] tr[data-sku='EVIL']")
    row.wait_for()
    # Shown as text, the markup made no element that could run a script later: nothing
    # left to wait for before saying none ran.
    assert IMAGE in row.inner_text()
    injected = "img[onerror], script:not([src])"
    assert page.evaluate(f"document.querySelectorAll({injected!r}).length") == 0
    assert dialogs == [], f"script ran: {dialogs}"

"""The counter and report pages render for the right people."""

from __future__ import annotations

from tests.member_cards.conftest import login
from tests.pos.conftest import sale_body


def test_counter_page_for_a_clerk(client, counter):
    login(client, counter.clerk.username)
    response = client.get("/counter")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "data-scan" in page and "/api/v1/shops/GJY/sales" in page
    assert response.headers["Cache-Control"] == "no-store"


def test_counter_page_needs_a_login_and_the_office_picks_a_shop(client, counter, factory):
    assert client.get("/counter").status_code == 302
    login(client, factory.admin.username)
    picker = client.get("/counter")
    assert picker.status_code == 200
    page = picker.get_data(as_text=True)
    assert "选择超市" in page and "高家堰诚信超市" in page
    assert 'href="/counter?shop=GJY"' in page and 'href="/counter/display?shop=GJY"' in page
    assert 'href="/shops/GJY/sales"' in page
    assert client.get("/counter?shop=GJY").status_code == 200
    # A shop that is not there: the picker again, saying so, not a page to edit the URL on.
    missing = client.get("/counter?shop=NOPE")
    assert missing.status_code == 404
    assert "NOPE" in missing.get_data(as_text=True) and 'href="/counter?shop=GJY"' in (
        missing.get_data(as_text=True)
    )
    display = client.get("/counter/display")
    assert display.status_code == 200 and 'href="/counter/display?shop=GJY"' in (
        display.get_data(as_text=True)
    )


def test_counter_page_sells_with_the_session_cookie_and_csrf_header(client, counter):
    login(client, counter.clerk.username)
    page = client.get("/counter").get_data(as_text=True)
    csrf = page.split('data-csrf="', 1)[1].split('"', 1)[0]
    body = sale_body(counter, {"sku": "SOAP", "qty": 1}, card_payload=counter.payload)
    refused = client.post("/api/v1/shops/GJY/sales", json=body)
    assert refused.status_code == 403
    response = client.post("/api/v1/shops/GJY/sales", json=body, headers={"X-CSRFToken": csrf})
    assert response.status_code == 201, response.get_json()


def test_daily_report_page_for_a_manager(client, counter):
    client.post(
        "/api/v1/shops/GJY/sales",
        json=sale_body(counter, {"sku": "SOAP", "qty": 1}),
        headers=counter.clerk_headers,
    )
    login(client, counter.manager.username)
    page = client.get("/shops/GJY/reports/daily").get_data(as_text=True)
    assert "GJY-" in page and "肥皂" in page
    assert client.get("/shops/GJY/reports/daily?date=nope").status_code == 422
    login(client, counter.clerk.username)
    assert client.get("/shops/GJY/reports/daily").status_code == 403


def test_sale_history_and_a_sale_with_its_receipt(client, counter):
    data = client.post(
        "/api/v1/shops/GJY/sales",
        json=sale_body(counter, {"sku": "RICE-10", "qty": 1}),
        headers=counter.clerk_headers,
    ).get_json()
    login(client, counter.clerk.username)
    today = client.get("/shops/GJY/sales").get_data(as_text=True)
    assert data["receipt_no"] in today
    found = client.get("/shops/GJY/sales", query_string={"receipt_no": data["receipt_no"]})
    assert found.headers["Location"].endswith(f"/sales/{data['sale_id']}")
    page = client.get(f"/sales/{data['sale_id']}").get_data(as_text=True)
    assert "大米 10斤" in page and "覃德华" in page
    assert client.get("/shops/GJY/sales?date=bad").status_code == 422
    assert client.get("/shops/ZJB/sales").status_code == 403

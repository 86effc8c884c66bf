"""Returns and voids from the sale page: a manager's forms, their refusals and their keys."""

from __future__ import annotations

from tests.helpers.pages import form_value
from tests.member_cards.conftest import login
from tests.pos.conftest import balance, on_hand, sale_body


def _sell(client, counter, *lines, key="sale-1"):
    response = client.post(
        "/api/v1/shops/GJY/sales",
        json=sale_body(counter, *lines, key=key),
        headers=counter.clerk_headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _return_form(page: str) -> dict[str, str]:
    return {
        "return-csrf_token": form_value(page, "return-csrf_token"),
        "return-idempotency_key": form_value(page, "return-idempotency_key"),
    }


def test_a_manager_returns_by_line_and_a_resubmission_changes_nothing(client, counter):
    sale = _sell(client, counter, {"sku": "RICE-10", "qty": 2}, {"sku": "SOAP", "qty": 3})
    login(client, counter.manager.username)
    page = client.get(f"/sales/{sale['sale_id']}")
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert 'id="return-form"' in html and 'id="void-form"' in html
    data = {
        **_return_form(html),
        "sku": ["RICE-10", "SOAP"],
        "qty": ["１", ""],  # full-width digit from a Chinese input method; blank: not returned
        "return-reason": "袋子破了",
    }
    before = balance(counter.household)
    done = client.post(f"/sales/{sale['sale_id']}/return", data=data)
    assert done.status_code == 302
    assert balance(counter.household) == before + 70
    assert on_hand(counter.shop, counter.rice) == 19
    again = client.post(f"/sales/{sale['sale_id']}/return", data=data)
    assert again.status_code == 302
    assert balance(counter.household) == before + 70
    shown = client.get(f"/sales/{sale['sale_id']}").get_data(as_text=True)
    assert "袋子破了" in shown and "+70" in shown


def test_a_return_beyond_what_is_left_is_refused_and_changes_nothing(client, counter):
    sale = _sell(client, counter, {"sku": "RICE-10", "qty": 1})
    login(client, counter.manager.username)
    html = client.get(f"/sales/{sale['sale_id']}").get_data(as_text=True)
    before = balance(counter.household)
    refused = client.post(
        f"/sales/{sale['sale_id']}/return",
        data={**_return_form(html), "sku": "RICE-10", "qty": "2", "return-reason": "x"},
    )
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert 'role="alert"' in text and 'value="2"' in text  # the typed quantity is kept
    for bad, status in (({"qty": "abc"}, 422), ({"qty": ""}, 422), ({"return-reason": ""}, 422)):
        data = {**_return_form(html), "sku": "RICE-10", "qty": "1", "return-reason": "x", **bad}
        assert client.post(f"/sales/{sale['sale_id']}/return", data=data).status_code == status
    no_csrf = {"return-idempotency_key": "k", "sku": "RICE-10", "qty": "1", "return-reason": "x"}
    assert client.post(f"/sales/{sale['sale_id']}/return", data=no_csrf).status_code in (400, 422)
    assert balance(counter.household) == before
    assert on_hand(counter.shop, counter.rice) == 19


def test_a_clerk_sees_no_return_forms_and_may_not_post_them(client, counter):
    sale = _sell(client, counter, {"sku": "SOAP", "qty": 1})
    login(client, counter.clerk.username)
    html = client.get(f"/sales/{sale['sale_id']}").get_data(as_text=True)
    assert 'id="return-form"' not in html and 'id="void-form"' not in html
    token = form_value(html, "csrf_token")  # the page's own (logout) form's token
    refused = client.post(
        f"/sales/{sale['sale_id']}/void",
        data={"void-csrf_token": token, "void-reason": "x", "void-idempotency_key": "k"},
    )
    assert refused.status_code == 403


def test_a_void_gives_everything_back_once_and_closes_the_forms(client, counter):
    sale = _sell(client, counter, {"sku": "OIL-5L", "qty": 1}, {"sku": "SOAP", "qty": 2})
    login(client, counter.manager.username)
    html = client.get(f"/sales/{sale['sale_id']}").get_data(as_text=True)
    before = balance(counter.household)
    data = {
        "void-csrf_token": form_value(html, "void-csrf_token"),
        "void-idempotency_key": form_value(html, "void-idempotency_key"),
        "void-reason": "收银员扫错了",
    }
    assert client.post(f"/sales/{sale['sale_id']}/void", data=data).status_code == 302
    assert balance(counter.household) == before + 130
    assert on_hand(counter.shop, counter.oil) == 10
    assert client.post(f"/sales/{sale['sale_id']}/void", data=data).status_code == 302
    assert balance(counter.household) == before + 130
    after = client.get(f"/sales/{sale['sale_id']}").get_data(as_text=True)
    assert 'id="return-form"' not in after and 'id="void-form"' not in after
    assert "收银员扫错了" in after
    report = client.get("/shops/GJY/reports/daily").get_data(as_text=True)
    assert 'id="report-returns"' in report and "收银员扫错了" in report
    data["void-idempotency_key"] = "another-key"
    refused = client.post(f"/sales/{sale['sale_id']}/void", data=data)
    assert refused.status_code == 409 and 'role="alert"' in refused.get_data(as_text=True)


def test_a_scanned_receipt_number_opens_its_sale(client, counter):
    sale = _sell(client, counter, {"sku": "SOAP", "qty": 1})
    login(client, counter.clerk.username)
    found = client.get("/shops/GJY/sales", query_string={"receipt_no": sale["receipt_no"].lower()})
    assert found.status_code == 302 and found.headers["Location"].endswith(
        f"/sales/{sale['sale_id']}"
    )
    missing = client.get("/shops/GJY/sales", query_string={"receipt_no": "GJY-20000101-0001"})
    assert missing.status_code == 200

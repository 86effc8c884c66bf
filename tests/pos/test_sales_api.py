"""Selling through the API: all or nothing, idempotent, merged lines, receipt numbers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import db
from ledger.services import verify_ledger
from pos.models import Sale
from tests.conftest import assert_problem
from tests.pos.conftest import Counter, balance, on_hand, sale_body

URL = "/api/v1/shops/GJY/sales"


def sell(client: Any, counter: Counter, body: dict[str, Any]) -> Any:
    return client.post(URL, json=body, headers=counter.clerk_headers)


def sale_count() -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count(Sale.id))) or 0)


def test_sale_by_card_moves_points_goods_and_records_the_sale(client, counter):
    body = sale_body(
        counter,
        {"barcode": counter.rice.barcode, "qty": 1},
        {"sku": "SOAP", "qty": 2},
        card_payload=counter.payload,
    )
    response = sell(client, counter, body)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["total_points"] == 80
    assert data["balance_after"] == 220
    assert data["receipt_no"].startswith("GJY-") and data["receipt_no"].endswith("-0001")
    assert [
        (line["sku"], line["qty"], line["points_each"], line["points"]) for line in data["lines"]
    ] == [
        ("RICE-10", 1, 70, 70),
        ("SOAP", 2, 5, 10),
    ]
    assert balance(counter.household) == 220
    assert on_hand(counter.shop, counter.rice) == 19
    assert on_hand(counter.shop, counter.soap) == 98
    detail = client.get(f"/api/v1/sales/{data['sale_id']}", headers=counter.clerk_headers)
    assert detail.status_code == 200
    assert detail.get_json()["returns"] == []
    assert detail.get_json()["status"] == "completed"
    assert verify_ledger(db.session).ok


def test_repeated_lines_of_one_product_merge(client, counter):
    body = sale_body(
        counter,
        {"sku": "SOAP", "qty": 1},
        {"barcode": counter.rice.barcode, "qty": 1},
        {"sku": "SOAP", "qty": 3},
        {"sku": "RICE-10", "qty": 1},
    )
    data = sell(client, counter, body).get_json()
    assert [(line["sku"], line["qty"]) for line in data["lines"]] == [("SOAP", 4), ("RICE-10", 2)]
    assert data["total_points"] == 160


def test_receipt_numbers_are_sequential_per_shop_and_day(client, counter, factory):
    numbers = [
        sell(
            client, counter, sale_body(counter, {"sku": "SOAP", "qty": 1}, key=f"k{i}")
        ).get_json()["receipt_no"]
        for i in range(3)
    ]
    prefix = numbers[0].rsplit("-", 1)[0]
    assert numbers == [f"{prefix}-0001", f"{prefix}-0002", f"{prefix}-0003"]
    # A refused sale takes no number.
    refused = sell(client, counter, sale_body(counter, {"sku": "OIL-5L", "qty": 3}, key="big"))
    assert_problem(refused, 409, "insufficient_points")
    nxt = sell(client, counter, sale_body(counter, {"sku": "SOAP", "qty": 1}, key="k9"))
    assert nxt.get_json()["receipt_no"] == f"{prefix}-0004"


def test_same_key_same_body_replays_and_other_body_conflicts(client, counter):
    body = sale_body(counter, {"sku": "RICE-10", "qty": 1}, key="once")
    first = sell(client, counter, body)
    again = sell(client, counter, body)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert balance(counter.household) == 230
    assert on_hand(counter.shop, counter.rice) == 19
    assert sale_count() == 1
    other = sale_body(counter, {"sku": "RICE-10", "qty": 2}, key="once")
    assert_problem(sell(client, counter, other), 409, "idempotency_conflict")
    assert balance(counter.household) == 230


def _unchanged(counter: Counter) -> None:
    assert balance(counter.household) == 300
    assert on_hand(counter.shop, counter.rice) == 20
    assert on_hand(counter.shop, counter.oil) == 10
    assert on_hand(counter.shop, counter.soap) == 100
    assert sale_count() == 0


def test_insufficient_points_names_the_shortfall_and_changes_nothing(client, counter):
    body = sale_body(counter, {"sku": "OIL-5L", "qty": 2}, {"sku": "RICE-10", "qty": 1})
    problem = assert_problem(sell(client, counter, body), 409, "insufficient_points")
    assert problem["shortfall"] == 10
    _unchanged(counter)


def test_out_of_stock_with_points_enough(client, counter, factory):
    rich = factory.household(balance=5000)
    body = {
        "household_id": rich.id,
        "lines": [{"sku": "SOAP", "qty": 1}, {"sku": "RICE-10", "qty": 21}],
        "idempotency_key": "oos",
    }
    problem = assert_problem(sell(client, counter, body), 409, "out_of_stock")
    assert problem["lines"][0]["sku"] == "RICE-10"
    assert balance(rich) == 5000
    _unchanged(counter)


def test_unknown_product_changes_nothing(client, counter):
    body = sale_body(counter, {"sku": "SOAP", "qty": 1}, {"barcode": "6909999999999", "qty": 1})
    assert_problem(sell(client, counter, body), 404, "unknown_product")
    _unchanged(counter)


def test_bad_card_changes_nothing(client, counter):
    body = sale_body(counter, {"sku": "SOAP", "qty": 1}, card_payload=counter.payload[:-3] + "xyz")
    assert_problem(sell(client, counter, body), 422, "invalid_card")
    _unchanged(counter)


def test_revoked_card_changes_nothing(client, counter, factory):
    from core.db import utcnow
    from member_cards import services as cards
    from member_cards.signing import keyring_from_config

    keyring = keyring_from_config(client.application.config)
    card = cards.resolve_card(db.session, payload=counter.payload, keyring=keyring)
    cards.revoke_card(db.session, actor=factory.admin, now=utcnow(), card_id=card.id, reason="丢失")
    db.session.commit()
    body = sale_body(counter, {"sku": "SOAP", "qty": 1}, card_payload=counter.payload)
    assert_problem(sell(client, counter, body), 410, "card_revoked")
    _unchanged(counter)


@pytest.mark.parametrize(
    "body",
    [
        {"lines": [{"sku": "SOAP", "qty": 1}], "idempotency_key": "v"},
        {
            "household_id": 1,
            "card_payload": "IC1.x",
            "lines": [{"sku": "SOAP", "qty": 1}],
            "idempotency_key": "v",
        },
        {"household_id": 1, "lines": [], "idempotency_key": "v"},
        {"household_id": 1, "lines": [{"sku": "SOAP", "qty": 0}], "idempotency_key": "v"},
        {"household_id": 1, "lines": [{"sku": "SOAP", "qty": "1"}], "idempotency_key": "v"},
        {
            "household_id": 1,
            "lines": [{"sku": "SOAP", "barcode": "1", "qty": 1}],
            "idempotency_key": "v",
        },
        {"household_id": 1, "lines": [{"qty": 1}], "idempotency_key": "v"},
        {"household_id": 1, "lines": [{"sku": "SOAP", "qty": 1}]},
        {"household_id": 1, "lines": [{"sku": "SOAP", "qty": 1}], "idempotency_key": ""},
        {"household_id": 1, "lines": [{"sku": "SOAP", "qty": 1}], "idempotency_key": "v", "x": 1},
    ],
)
def test_validation_errors_change_nothing(client, counter, body):
    assert_problem(sell(client, counter, body), 422, "validation_error")
    _unchanged(counter)


def test_other_shops_staff_and_cadres_may_not_sell_here(client, counter, factory):
    from accounts.auth import Role

    factory.shop("ZJB")
    other = factory.headers(factory.user(Role.CLERK, shop="ZJB"))
    body = sale_body(counter, {"sku": "SOAP", "qty": 1})
    assert_problem(client.post(URL, json=body, headers=other), 403, "forbidden")
    assert_problem(client.post(URL, json=body), 401, "unauthenticated")
    _unchanged(counter)


def test_unknown_sale_is_404_and_other_shops_cannot_read_it(client, counter, factory):
    from accounts.auth import Role

    data = sell(client, counter, sale_body(counter, {"sku": "SOAP", "qty": 1})).get_json()
    factory.shop("ZJB")
    other = factory.headers(factory.user(Role.CLERK, shop="ZJB"))
    assert_problem(client.get(f"/api/v1/sales/{data['sale_id']}", headers=other), 404, "not_found")
    assert_problem(client.get("/api/v1/sales/999999", headers=counter.clerk_headers), 404)


def test_customer_lookup_shows_spendable_points(client, counter):
    response = client.post(
        "/api/v1/shops/GJY/customer",
        json={"card_payload": counter.payload},
        headers=counter.clerk_headers,
    )
    assert response.status_code == 200
    data = response.get_json()
    assert data["household_id"] == counter.household.id
    assert data["village_name"] == "郑家榜村"
    assert data["spendable"] == 300
    bad = client.post(
        "/api/v1/shops/GJY/customer",
        json={"card_payload": "nonsense"},
        headers=counter.clerk_headers,
    )
    assert_problem(bad, 422, "invalid_card")


def test_find_sales_by_receipt_number(client, counter):
    data = sell(client, counter, sale_body(counter, {"sku": "SOAP", "qty": 1})).get_json()
    found = client.get(
        URL, query_string={"receipt_no": data["receipt_no"]}, headers=counter.clerk_headers
    ).get_json()
    assert [s["sale_id"] for s in found["sales"]] == [data["sale_id"]]


def test_receipt_text_and_a_marked_copy(client, counter):
    data = sell(client, counter, sale_body(counter, {"sku": "RICE-10", "qty": 2})).get_json()
    url = f"/api/v1/sales/{data['sale_id']}/receipt"
    response = client.get(url, headers=counter.clerk_headers)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert data["receipt_no"] in text and "大米 10斤" in text and "覃德华" in text
    assert "140" in text and "160" in text
    from pos.receipts.layout import gbk_columns

    assert max(gbk_columns(line) for line in text.splitlines()) <= 32
    assert "副本" not in text
    copy = client.get(url, query_string={"copy": "true"}, headers=counter.clerk_headers)
    assert "副本" in copy.get_data(as_text=True)
    wide = client.get(url, query_string={"width": 48}, headers=counter.clerk_headers)
    assert max(gbk_columns(line) for line in wide.get_data(as_text=True).splitlines()) == 48
    for bad in ({"format": "pdf"}, {"width": 40}):
        assert_problem(client.get(url, query_string=bad, headers=counter.clerk_headers), 422)


def test_unknown_household_is_404_and_changes_nothing(client, counter):
    body = sale_body(counter, {"sku": "SOAP", "qty": 1}, household_id=999999)
    assert_problem(sell(client, counter, body), 404, "not_found")
    _unchanged(counter)

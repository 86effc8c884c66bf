"""The counter reads what scanners and input methods type: cards, goods, receipts, households."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from accounts.auth import Role
from core.db import db
from tests.conftest import assert_problem
from tests.helpers.text import full_width
from tests.member_cards.conftest import login
from tests.pos.conftest import Counter, balance, on_hand, sale_body

SALES = "/api/v1/shops/GJY/sales"
CUSTOMER = "/api/v1/shops/GJY/customer"
GOODS = "/api/v1/shops/GJY/goods/"


def sell(client: Any, counter: Counter, body: dict[str, Any]) -> Any:
    return client.post(SALES, json=body, headers=counter.clerk_headers)


CARD_SPELLINGS = {
    "lower": str.lower,
    "full_width": full_width,
    "full_width_lower": lambda payload: full_width(payload.lower()),
    "caps_lock_and_enter": lambda payload: payload.lower() + "\r\n",
}


# --- the customer --------------------------------------------------------------------


@pytest.mark.parametrize("spelling", sorted(CARD_SPELLINGS))
def test_the_customer_behind_a_card_however_it_was_typed(client, counter, spelling):
    typed = CARD_SPELLINGS[spelling](counter.payload)
    assert typed != counter.payload
    response = client.post(CUSTOMER, json={"card_payload": typed}, headers=counter.clerk_headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["household_id"] == counter.household.id


# --- selling -------------------------------------------------------------------------


def test_a_sale_by_a_lower_case_card_and_full_width_lines(client, counter):
    body = sale_body(
        counter,
        {"barcode": full_width(counter.rice.barcode), "qty": 1},
        {"sku": full_width("SOAP"), "qty": 2},
        {"sku": "oil-5l", "qty": 1},
        card_payload=counter.payload.lower(),
    )
    response = sell(client, counter, body)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert [(line["sku"], line["qty"]) for line in data["lines"]] == [
        ("RICE-10", 1),
        ("SOAP", 2),
        ("OIL-5L", 1),
    ]
    assert data["household_id"] == counter.household.id
    assert balance(counter.household) == 300 - 70 - 10 - 120
    assert (on_hand(counter.shop, counter.rice), on_hand(counter.shop, counter.soap)) == (19, 98)


def test_a_full_width_card_sells_too(client, counter):
    body = sale_body(counter, {"sku": "SOAP", "qty": 1}, card_payload=full_width(counter.payload))
    response = sell(client, counter, body)
    assert response.status_code == 201, response.get_json()
    assert balance(counter.household) == 295


def test_a_retry_typed_another_way_is_the_same_sale(client, counter):
    first = sell(
        client,
        counter,
        sale_body(counter, {"sku": "SOAP", "qty": 1}, key="again", card_payload=counter.payload),
    )
    assert first.status_code == 201
    again = sell(
        client,
        counter,
        sale_body(
            counter,
            {"sku": full_width("SOAP"), "qty": 1},
            key="again",
            card_payload=counter.payload.lower() + "\r\n",
        ),
    )
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["sale_id"] == first.get_json()["sale_id"]
    assert balance(counter.household) == 295


def test_lines_that_read_as_nothing_are_refused(client, counter):
    for line in ({"sku": "\u3000 ", "qty": 1}, {"barcode": "\r\n", "qty": 1}):
        body = sale_body(counter, line)
        assert_problem(sell(client, counter, body), 422, "validation_error")
    body = sale_body(counter, {"sku": full_width("NOPE"), "qty": 1})
    assert_problem(sell(client, counter, body), 404, "unknown_product")
    assert balance(counter.household) == 300


def test_a_return_names_its_goods_however_typed(client, counter):
    sale = sell(client, counter, sale_body(counter, {"sku": "SOAP", "qty": 3})).get_json()
    back = client.post(
        f"/api/v1/sales/{sale['sale_id']}/returns",
        json={
            "lines": [{"sku": full_width("soap"), "qty": 1}, {"sku": "soap", "qty": 1}],
            "reason": "破损",
            "idempotency_key": "r-1",
        },
        headers=counter.manager_headers,
    )
    assert back.status_code == 201, back.get_json()
    assert back.get_json()["refund_points"] == 10
    assert on_hand(counter.shop, counter.soap) == 99


# --- finding sales -------------------------------------------------------------------


def _receipt_spellings(receipt_no: str) -> list[str]:
    return [receipt_no.lower(), full_width(receipt_no), full_width(receipt_no.lower()) + "\t"]


def test_the_sales_api_finds_a_receipt_number_however_typed(client, counter):
    sale = sell(client, counter, sale_body(counter, {"sku": "SOAP", "qty": 1})).get_json()
    for typed in _receipt_spellings(sale["receipt_no"]):
        found = client.get(SALES, query_string={"receipt_no": typed}, headers=counter.clerk_headers)
        assert found.status_code == 200, found.get_json()
        assert [s["sale_id"] for s in found.get_json()["sales"]] == [sale["sale_id"]], typed


def test_the_sales_page_opens_a_receipt_number_however_typed(client, counter):
    sale = sell(client, counter, sale_body(counter, {"sku": "SOAP", "qty": 1})).get_json()
    login(client, counter.clerk.username)
    for typed in _receipt_spellings(sale["receipt_no"]):
        found = client.get("/shops/GJY/sales", query_string={"receipt_no": typed})
        assert found.status_code == 302, typed
        assert found.headers["Location"].endswith(f"/sales/{sale['sale_id']}")


def test_the_sales_page_finds_a_full_width_household_id(client, counter):
    sale = sell(client, counter, sale_body(counter, {"sku": "SOAP", "qty": 1})).get_json()
    login(client, counter.clerk.username)
    typed = full_width(str(counter.household.id)) + "\u3000"
    page = client.get("/shops/GJY/sales", query_string={"household_id": typed})
    assert page.status_code == 200
    assert sale["receipt_no"] in page.get_data(as_text=True)
    # Anything else typed is looked for, and not found: never an error page.
    for junk in ("²", "十三", "1 2", "1\x002"):
        nothing = client.get("/shops/GJY/sales", query_string={"household_id": junk})
        assert nothing.status_code == 200, junk
        assert "没有找到" in nothing.get_data(as_text=True), junk


def test_a_shop_whose_code_has_lower_case_finds_its_receipts(client, counter, factory):
    shop = factory.shop("gjy2")
    factory.receive(shop, (counter.soap, 5))
    clerk = factory.headers(factory.user(Role.CLERK, shop="gjy2"))
    body = sale_body(counter, {"sku": "SOAP", "qty": 1})
    sale = client.post("/api/v1/shops/gjy2/sales", json=body, headers=clerk).get_json()
    assert sale["receipt_no"].startswith("gjy2-")
    for typed in (sale["receipt_no"].upper(), full_width(sale["receipt_no"])):
        found = client.get(
            "/api/v1/shops/gjy2/sales", query_string={"receipt_no": typed}, headers=clerk
        )
        assert [s["sale_id"] for s in found.get_json()["sales"]] == [sale["sale_id"]], typed


# --- the goods behind a scan -------------------------------------------------------------


def goods(client: Any, counter: Counter, scanned: str, headers: Any = None) -> Any:
    return client.get(GOODS + quote(scanned, safe=""), headers=headers or counter.clerk_headers)


@pytest.mark.parametrize(
    ("scanned", "sku"),
    [
        ("6901234567892", "RICE-10"),
        (full_width("6901234567892"), "RICE-10"),
        ("6901234567892\r\n", "RICE-10"),
        ("RICE-10", "RICE-10"),
        ("rice-10", "RICE-10"),
        (full_width("rice-10"), "RICE-10"),
        ("\u3000OIL-5L\u3000", "OIL-5L"),
        ("soap", "SOAP"),
    ],
)
def test_goods_are_found_by_barcode_else_by_sku(client, counter, scanned, sku):
    response = goods(client, counter, scanned)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["sku"] == sku


def test_goods_come_with_this_shops_stock_and_setting(client, counter, factory):
    body = goods(client, counter, "6901234567892").get_json()
    assert body == {
        "sku": "RICE-10",
        "barcode": "6901234567892",
        "name": "大米 10斤",
        "unit": "袋",
        "points_price": 70,
        "active": True,
        "on_hand": 20,
        "allow_negative_stock": False,
    }
    sold = sell(client, counter, sale_body(counter, {"sku": "RICE-10", "qty": 2}))
    assert sold.status_code == 201
    assert goods(client, counter, "RICE-10").get_json()["on_hand"] == 18
    # Goods never stocked at this shop: none on hand, not an error.
    factory.product("TOWEL", name="毛巾", points_price=9, unit="条")
    towel = goods(client, counter, "towel").get_json()
    assert (towel["on_hand"], towel["barcode"][:3]) == (0, "200")  # an in-store code
    counter.shop.allow_negative_stock = True
    db.session.commit()
    assert goods(client, counter, "TOWEL").get_json()["allow_negative_stock"] is True


def test_a_barcode_wins_over_a_sku_spelled_the_same(client, counter, factory):
    factory.product("6902345678903", name="散装油", points_price=3)
    assert goods(client, counter, "6902345678903").get_json()["sku"] == "OIL-5L"


def test_retired_goods_are_found_and_say_so(client, counter, factory):
    response = client.patch(
        "/api/v1/products/SOAP", json={"active": False}, headers=factory.headers(factory.admin)
    )
    assert response.status_code == 200
    assert goods(client, counter, "soap").get_json()["active"] is False


@pytest.mark.parametrize("scanned", ["6909999999994", "NOPE", full_width("nope"), "覃德华"])
def test_unknown_goods_are_unknown_product(client, counter, scanned):
    body = assert_problem(goods(client, counter, scanned), 404, "unknown_product")
    assert body["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "%00",
        "%00%00%00",
        "RICE%0010",
        "6901%002345678",
        "%FF%FE",
        "%ED%A0%80",  # a lone surrogate's UTF-8 spelling
        "%2F",
        "RICE-10%2F..%2F..",
        "..",
        "%20%20",
        "%E3%80%80",  # only an ideographic space
        "%0D%0A",
        "A" * 5000,
        full_width("9" * 2000),
        "%25",
        "%3Cscript%3E",
        "'%3B%20DROP%20TABLE%20products%3B--",
    ],
)
def test_junk_is_answered_4xx_never_500(client, counter, path):
    response = client.get(GOODS + path, headers=counter.clerk_headers)
    assert 400 <= response.status_code < 500, (path, response.status_code)
    assert response.mimetype == "application/problem+json"


def test_goods_are_for_this_shops_staff(client, counter, factory):
    factory.shop("ZJB")
    other = factory.headers(factory.user(Role.CLERK, shop="ZJB"))
    assert_problem(goods(client, counter, "RICE-10", headers=other), 403, "forbidden")
    assert_problem(client.get(GOODS + "RICE-10"), 401, "unauthenticated")
    cadre = factory.headers(factory.user(Role.CADRE, village="ZJB"))
    assert_problem(goods(client, counter, "RICE-10", headers=cadre), 403, "forbidden")
    admin = factory.headers(factory.admin)
    assert goods(client, counter, "RICE-10", headers=admin).status_code == 200
    assert_problem(client.get("/api/v1/shops/NOPE/goods/RICE-10", headers=admin), 404)

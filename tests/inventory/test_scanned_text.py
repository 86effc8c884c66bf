"""Barcodes and skus typed full-width, in lower case or with a scanner's Enter: still the goods."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from core.db import db
from inventory import services
from tests.conftest import assert_problem
from tests.helpers.pages import form_value, sign_in
from tests.helpers.text import full_width
from tests.inventory.helpers import on_hand


def _get(client: Any, path: str, headers: dict[str, str]) -> Any:
    return client.get(path, headers=headers)


# --- looking goods up ----------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        full_width("6901234567892"),
        "\u30006901234567892\u3000",
        "6901234567892\r\n",
        "\ufeff6901234567892",
        "6901234567892\x00",
    ],
)
def test_a_barcode_is_found_however_it_was_typed(client, as_admin, rice, typed):
    response = _get(client, f"/api/v1/products/by-barcode/{quote(typed)}", as_admin)
    assert response.status_code == 200, response.json
    assert response.json["sku"] == "RICE-10"


@pytest.mark.parametrize("typed", [full_width("RICE-10"), "rice-10", "Rice-10", " RICE-10\t"])
def test_a_sku_is_found_however_it_was_typed(client, as_admin, rice, typed):
    response = _get(client, f"/api/v1/products/{quote(typed)}", as_admin)
    assert response.status_code == 200, response.json
    assert response.json["barcode"] == "6901234567892"


def test_a_lower_case_sku_of_its_own_is_found_before_the_upper_case_one(client, factory, as_admin):
    factory.product("SALT", name="食盐")
    factory.product("salt", name="海盐")
    assert _get(client, "/api/v1/products/salt", as_admin).json["name"] == "海盐"
    assert _get(client, "/api/v1/products/SALT", as_admin).json["name"] == "食盐"
    assert _get(client, "/api/v1/products/Salt", as_admin).json["name"] == "食盐"
    assert _get(client, f"/api/v1/products/{quote(full_width('salt'))}", as_admin).json["name"] == (
        "海盐"
    )


@pytest.mark.parametrize(
    "junk",
    ["%00", "6901%002345678", "%00RICE-10%00X", "9" * 300, "%E5%A4%A7", "a%09b", "%2F"],
)
def test_junk_codes_are_unknown_never_an_error(client, as_admin, rice, junk):
    for path in (f"/api/v1/products/by-barcode/{junk}", f"/api/v1/products/{junk}"):
        response = _get(client, path, as_admin)
        assert 400 <= response.status_code < 500, (path, response.status_code)


def test_search_reads_codes_as_scanned_and_names_as_typed(client, factory, as_admin, rice, oil):
    factory.product("FLOUR-5", name="面粉（5斤）", barcode="6903456789014")
    searches = {
        full_width("RICE"): ["RICE-10"],
        "rice": ["RICE-10"],
        full_width("6902345678903"): ["OIL-5L"],
        # A name is matched as typed: NFKC would make ASCII of the stored name's brackets.
        "（5斤）": ["FLOUR-5"],
        "\u3000菜籽油\u3000": ["OIL-5L"],
    }
    for q, skus in searches.items():
        found = _get(client, f"/api/v1/products?q={quote(q)}", as_admin).json["products"]
        assert [p["sku"] for p in found] == skus, q


def test_stock_list_and_movements_read_full_width_codes(client, factory, shop, rice, as_manager):
    factory.receive(shop, (rice, 4))
    listed = _get(
        client, f"/api/v1/shops/{shop.code}/stock?q={quote(full_width('RICE'))}", as_manager
    )
    assert [i["sku"] for i in listed.json["items"]] == ["RICE-10"]
    moved = _get(
        client,
        f"/api/v1/shops/{shop.code}/stock/movements?sku={quote(full_width('rice-10'))}",
        as_manager,
    )
    assert [m["quantity"] for m in moved.json["movements"]] == [4]


# --- moving goods over the API -------------------------------------------------------


def test_every_stock_operation_reads_its_skus_as_scanned(
    client, shop, other_shop, rice, oil, as_manager
):
    base = f"/api/v1/shops/{shop.code}/stock"
    received = client.post(
        f"{base}/receipts",
        json={
            "reference": "送货单 9",
            "lines": [{"sku": full_width("RICE-10"), "qty": 10}, {"sku": "oil-5l\r\n", "qty": 5}],
            "idempotency_key": "scan-receipt",
        },
        headers=as_manager,
    )
    assert received.status_code == 201, received.json
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (10, 5)

    adjusted = client.post(
        f"{base}/adjustments",
        json={
            "lines": [{"sku": full_width("rice-10"), "delta": -1, "reason": "damaged"}],
            "idempotency_key": "scan-adjust",
        },
        headers=as_manager,
    )
    assert adjusted.status_code == 201, adjusted.json
    moved = client.post(
        f"{base}/transfers",
        json={
            "to_shop": other_shop.code,
            "lines": [{"sku": "\u3000RICE-10", "qty": 2}],
            "idempotency_key": "scan-transfer",
        },
        headers=as_manager,
    )
    assert moved.status_code == 201, moved.json
    counted = client.post(
        f"{base}/counts",
        json={
            "lines": [{"sku": full_width("Oil-5L"), "counted": 4}],
            "idempotency_key": "scan-count",
        },
        headers=as_manager,
    )
    assert counted.status_code == 201, counted.json
    assert counted.json["variances"][0]["sku"] == "OIL-5L"
    levels = client.put(
        f"{base}/reorder-levels",
        json={"lines": [{"sku": full_width("rice-10"), "reorder_level": 3}]},
        headers=as_manager,
    )
    assert levels.status_code == 200, levels.json
    assert [(i["sku"], i["reorder_level"]) for i in levels.json["items"]] == [("RICE-10", 3)]
    assert (on_hand(shop, rice), on_hand(shop, oil), on_hand(other_shop, rice)) == (7, 4, 2)


def test_two_spellings_of_one_sku_are_counted_twice(client, factory, shop, rice, as_manager):
    factory.receive(shop, (rice, 10))
    response = client.post(
        f"/api/v1/shops/{shop.code}/stock/counts",
        json={
            "lines": [{"sku": "RICE-10", "counted": 4}, {"sku": "rice-10", "counted": 5}],
            "idempotency_key": "twice",
        },
        headers=as_manager,
    )
    body = assert_problem(response, 422, "validation_error")
    assert "RICE-10" in str(body["errors"])
    assert on_hand(shop, rice) == 10


def test_the_catalogue_reads_a_new_products_codes_as_scanned(client, as_admin):
    created = client.post(
        "/api/v1/products",
        json={
            "sku": full_width("SOAP-1"),
            "name": "肥皂",
            "points_price": 4,
            "unit": "块",
            "barcode": full_width("6904567890125"),
        },
        headers=as_admin,
    )
    assert created.status_code == 201, created.json
    assert (created.json["sku"], created.json["barcode"]) == ("SOAP-1", "6904567890125")


# --- the stock pages --------------------------------------------------------------------


@pytest.fixture
def signed_in(client: Any, manager: Any) -> Any:
    sign_in(client, manager.username)
    return client


def _form(client: Any, url: str) -> dict[str, str]:
    html = client.get(url).get_data(as_text=True)
    return {
        "csrf_token": form_value(html, "csrf_token"),
        "idempotency_key": form_value(html, "idempotency_key"),
    }


def test_the_receiving_page_reads_full_width_skus_and_quantities(signed_in, shop, rice, oil):
    url = f"/shops/{shop.code}/stock/receive"
    data = _form(signed_in, url) | {
        "reference": full_width("NO.7"),
        "sku": [full_width("RICE-10"), "oil-5l"],
        "qty": [full_width("12"), "\u30003\u3000"],
    }
    response = signed_in.post(url, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (12, 3)


def test_a_refused_receiving_page_names_the_goods_it_was_given(signed_in, shop, rice):
    url = f"/shops/{shop.code}/stock/receive"
    data = _form(signed_in, url) | {
        "reference": "送货单",
        "sku": [full_width("RICE-10"), "NOPE"],
        "qty": ["1", "1"],
    }
    refused = signed_in.post(url, data=data)
    assert refused.status_code == 404
    page = refused.get_data(as_text=True)
    # The typed line is drawn again under its product's name, as read.
    assert "NOPE" in page and "大米 10斤" in page
    assert on_hand(shop, rice) == 0


def test_the_count_sheet_reads_full_width_codes_and_counts(signed_in, factory, shop, rice, oil):
    factory.receive(shop, (rice, 10), (oil, 5))
    url = f"/shops/{shop.code}/stock/count"
    data = _form(signed_in, url) | {
        "sku": [full_width("OIL-5L"), full_width("rice-10")],
        "counted": ["", full_width("13")],
    }
    # The difference is shown first; confirmed as shown, it is saved.
    shown = signed_in.post(url, data=data).get_data(as_text=True)
    data["confirm"] = form_value(shown, "confirm")
    assert data["confirm"] == "10:13"
    response = signed_in.post(url, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (13, 5)


def test_the_movements_page_reads_a_full_width_sku(signed_in, factory, shop, rice, oil):
    factory.receive(shop, (rice, 10), (oil, 5))
    page = signed_in.get(
        f"/shops/{shop.code}/stock/movements", query_string={"sku": full_width("rice-10")}
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "大米 10斤" in html and "菜籽油" not in html


def test_the_services_read_skus_as_scanned_for_direct_callers(session, factory, shop, rice):
    factory.receive(shop, (full_width("rice-10"), 2))
    assert services.get_product(db.session, "\u3000ｒｉｃｅ－１０\r\n").id == rice.id
    assert services.product_by_barcode(session, full_width("6901234567892")).id == rice.id
    assert services.product_by_code(session, "rice-10").id == rice.id
    assert services.products_by_sku(session, ["ｒｉｃｅ－１０"]) == {"ｒｉｃｅ－１０": rice}
    assert on_hand(shop, rice) == 2

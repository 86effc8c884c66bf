"""Who may act for which shop: managers and clerks their own, the county office every one."""

from __future__ import annotations

import pytest

from accounts.auth import Role


def receipt(key: str) -> dict:
    return {"reference": "R", "lines": [{"sku": "RICE-10", "qty": 1}], "idempotency_key": key}


@pytest.fixture
def staff(factory, shop, other_shop, rice):
    return {
        "manager": factory.headers(factory.user(Role.MANAGER, shop=shop.code)),
        "clerk": factory.headers(factory.user(Role.CLERK, shop=shop.code)),
        "other_manager": factory.headers(factory.user(Role.MANAGER, shop=other_shop.code)),
        "cadre": factory.headers(factory.user(Role.CADRE, village=factory.village().code)),
        "admin": factory.headers(factory.admin),
    }


READS = ["stock", "stock/movements", "stock/reconcile", "stock?low=true"]


def test_staff_read_their_own_shop_only(client, shop, staff):
    for path in READS:
        url = f"/api/v1/shops/{shop.code}/{path}"
        for who in ("manager", "clerk", "admin"):
            assert client.get(url, headers=staff[who]).status_code == 200, (path, who)
        for who in ("other_manager", "cadre"):
            response = client.get(url, headers=staff[who])
            assert (response.status_code, response.json["code"]) == (403, "forbidden"), (path, who)
        assert client.get(url).status_code == 401


def test_only_the_shops_manager_or_the_office_moves_stock(client, shop, other_shop, staff):
    url = f"/api/v1/shops/{shop.code}/stock/receipts"
    for i, who in enumerate(("clerk", "other_manager", "cadre")):
        response = client.post(url, json=receipt(f"k{i}"), headers=staff[who])
        assert (response.status_code, response.json["code"]) == (403, "forbidden"), who
    assert client.post(url, json=receipt("m"), headers=staff["manager"]).status_code == 201
    assert client.post(url, json=receipt("a"), headers=staff["admin"]).status_code == 201
    theirs = f"/api/v1/shops/{other_shop.code}/stock/receipts"
    assert client.post(theirs, json=receipt("x"), headers=staff["manager"]).status_code == 403
    assert client.post(url, json=receipt("n")).status_code == 401


def test_a_manager_transfers_only_out_of_their_own_shop(
    client, factory, shop, other_shop, rice, staff
):
    factory.receive(other_shop, (rice, 5))
    response = client.post(
        f"/api/v1/shops/{other_shop.code}/stock/transfers",
        json={
            "to_shop": shop.code,
            "lines": [{"sku": "RICE-10", "qty": 5}],
            "idempotency_key": "t",
        },
        headers=staff["manager"],
    )
    assert response.status_code == 403


def test_catalogue_and_shops_are_the_offices(client, staff):
    product = {"sku": "SALT", "name": "食盐", "points_price": 3, "unit": "袋"}
    for who in ("manager", "clerk", "cadre"):
        assert client.post("/api/v1/products", json=product, headers=staff[who]).status_code == 403
        shop = {"code": "NEW", "name": "新店"}
        assert client.post("/api/v1/shops", json=shop, headers=staff[who]).status_code == 403
    assert client.post("/api/v1/products", json=product, headers=staff["admin"]).status_code == 201
    # Everyone signed in may look goods up; the counter needs it.
    assert client.get("/api/v1/products?q=食盐", headers=staff["clerk"]).json["total"] == 1
    shops = client.get("/api/v1/shops", headers=staff["clerk"]).json["shops"]
    assert [s["code"] for s in shops] == ["GJY", "ZJB"]


def test_an_unknown_shop_is_not_found_for_the_office(client, staff):
    response = client.get("/api/v1/shops/NOPE/stock", headers=staff["admin"])
    assert (response.status_code, response.json["code"]) == (404, "not_found")

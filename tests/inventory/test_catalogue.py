"""The catalogue: barcodes verified and unique, in-store codes never reused, look-ups."""

from __future__ import annotations

from inventory.barcodes import is_in_store, is_valid_ean


def product(sku: str, **extra) -> dict:
    return {"sku": sku, "name": "食盐 400克", "points_price": 3, "unit": "袋"} | extra


def test_a_product_with_a_manufacturer_barcode(client, as_admin):
    response = client.post(
        "/api/v1/products",
        json=product("SALT", barcode="6903456789014", name_en="Salt 400 g", category="调味"),
        headers=as_admin,
    )
    assert response.status_code == 201, response.json
    assert response.json | {"id": 0} == {
        "id": 0,
        "sku": "SALT",
        "name": "食盐 400克",
        "name_en": "Salt 400 g",
        "unit": "袋",
        "points_price": 3,
        "category": "调味",
        "barcode": "6903456789014",
        "active": True,
    }
    ean8 = client.post(
        "/api/v1/products", json=product("SALT8", barcode="96385074"), headers=as_admin
    )
    assert ean8.status_code == 201


def test_bad_barcodes_are_refused(client, as_admin):
    for i, code in enumerate(("6903456789015", "690345678901", "69034567890a4", "9638507")):
        response = client.post(
            "/api/v1/products", json=product(f"BAD{i}", barcode=code), headers=as_admin
        )
        assert (response.status_code, response.json["code"]) == (422, "validation_error"), code
        assert "barcode" in response.json["errors"]


def test_a_barcode_belongs_to_one_product(client, as_admin):
    assert (
        client.post(
            "/api/v1/products", json=product("A", barcode="6903456789014"), headers=as_admin
        ).status_code
        == 201
    )
    clash = client.post(
        "/api/v1/products", json=product("B", barcode="6903456789014"), headers=as_admin
    )
    assert (clash.status_code, clash.json["code"]) == (409, "conflict")
    same_sku = client.post("/api/v1/products", json=product("A"), headers=as_admin)
    assert same_sku.status_code == 409


def test_goods_without_a_barcode_get_in_store_codes_never_reused(client, as_admin):
    first = client.post("/api/v1/products", json=product("EGGS"), headers=as_admin).json
    second = client.post("/api/v1/products", json=product("NOODLES"), headers=as_admin).json
    codes = [first["barcode"], second["barcode"]]
    assert all(is_valid_ean(c) and is_in_store(c) for c in codes)
    assert codes[0] < codes[1]

    # EGGS gets a manufacturer barcode; its old in-store code is retired, not recycled.
    moved = client.patch(
        "/api/v1/products/EGGS", json={"barcode": "6904567890125"}, headers=as_admin
    )
    assert moved.status_code == 200, moved.json
    third = client.post("/api/v1/products", json=product("TOWEL"), headers=as_admin).json
    assert third["barcode"] not in codes and third["barcode"] > codes[1]
    taken = client.patch("/api/v1/products/TOWEL", json={"barcode": codes[0]}, headers=as_admin)
    assert (taken.status_code, taken.json["code"]) == (409, "conflict")


def test_look_up_by_barcode_and_search(client, factory, rice, oil):
    headers = factory.headers(factory.admin)
    found = client.get("/api/v1/products/by-barcode/6901234567892", headers=headers)
    assert (found.status_code, found.json["sku"]) == (200, "RICE-10")
    missing = client.get("/api/v1/products/by-barcode/6909999999994", headers=headers)
    assert (missing.status_code, missing.json["code"]) == (404, "unknown_product")
    garbage = client.get("/api/v1/products/by-barcode/%E5%A4%A7", headers=headers)
    assert garbage.status_code == 404
    assert client.get("/api/v1/products/NOPE", headers=headers).json["code"] == "unknown_product"
    listed = client.get("/api/v1/products?q=菜籽", headers=headers).json
    assert [p["sku"] for p in listed["products"]] == ["OIL-5L"]
    assert listed["total"] == 1


def test_prices_are_positive_whole_numbers(client, as_admin):
    for price in (0, -5, "12", 1.5, True):
        response = client.post(
            "/api/v1/products", json=product("P", points_price=price), headers=as_admin
        )
        assert response.status_code == 422, price


def test_a_product_can_be_retired_and_repriced(client, rice, as_admin):
    response = client.patch(
        "/api/v1/products/RICE-10", json={"active": False, "points_price": 75}, headers=as_admin
    )
    assert response.json["active"] is False
    assert response.json["points_price"] == 75
    assert client.get("/api/v1/products?active=true", headers=as_admin).json["total"] == 0

"""Stock over the API: receipts, adjustments, counts, transfers, listing, reconcile, negatives."""

from __future__ import annotations

from sqlalchemy import text

from core.db import db
from tests.inventory.helpers import movement_count, on_hand


def test_receipt_adds_stock_and_is_journalled(client, shop, rice, oil, as_manager, manager):
    response = client.post(
        f"/api/v1/shops/{shop.code}/stock/receipts",
        json={
            "reference": "送货单 0042",
            "supplier": "长阳粮油公司",
            "lines": [{"sku": "RICE-10", "qty": 20}, {"sku": "OIL-5L", "qty": 6}],
            "idempotency_key": "delivery-42",
        },
        headers=as_manager,
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["kind"] == "receipt"
    assert body["supplier"] == "长阳粮油公司"
    assert body["user"] == manager.username
    assert {(m["sku"], m["quantity"], m["on_hand_after"]) for m in body["movements"]} == {
        ("RICE-10", 20, 20),
        ("OIL-5L", 6, 6),
    }
    assert on_hand(shop, rice) == 20

    listed = client.get(
        f"/api/v1/shops/{shop.code}/stock/movements?sku=RICE-10", headers=as_manager
    ).json["movements"]
    assert [(m["kind"], m["quantity"], m["reference"], m["user"]) for m in listed] == [
        ("receipt", 20, "送货单 0042", manager.username)
    ]


def test_count_sets_on_hand_and_reports_every_line(client, factory, shop, rice, oil, as_manager):
    factory.receive(shop, (rice, 10), (oil, 4))
    response = client.post(
        f"/api/v1/shops/{shop.code}/stock/counts",
        json={
            "lines": [{"sku": "RICE-10", "counted": 8}, {"sku": "OIL-5L", "counted": 4}],
            "idempotency_key": "count-1",
        },
        headers=as_manager,
    )
    assert response.status_code == 201, response.json
    variances = {v["sku"]: v for v in response.json["variances"]}
    assert variances["RICE-10"] | {} == {
        "sku": "RICE-10",
        "name": "大米 10斤",
        "expected": 10,
        "counted": 8,
        "delta": -2,
    }
    assert (variances["OIL-5L"]["expected"], variances["OIL-5L"]["delta"]) == (4, 0)
    # Only the variance is a movement, and its reason says it came from a count.
    assert [
        (m["sku"], m["kind"], m["quantity"], m["reason"]) for m in response.json["movements"]
    ] == [("RICE-10", "count", -2, "count")]
    assert on_hand(shop, rice) == 8
    assert on_hand(shop, oil) == 4


def test_transfer_moves_goods_between_shops_in_one_step(
    client, factory, shop, other_shop, rice, as_manager
):
    factory.receive(shop, (rice, 10))
    response = client.post(
        f"/api/v1/shops/{shop.code}/stock/transfers",
        json={
            "to_shop": other_shop.code,
            "lines": [{"sku": "RICE-10", "qty": 3}],
            "idempotency_key": "transfer-1",
        },
        headers=as_manager,
    )
    assert response.status_code == 201, response.json
    assert response.json["to_shop"] == other_shop.code
    assert (on_hand(shop, rice), on_hand(other_shop, rice)) == (7, 3)

    as_admin = factory.headers(factory.admin)
    theirs = client.get(f"/api/v1/shops/{other_shop.code}/stock/movements", headers=as_admin).json[
        "movements"
    ]
    assert [(m["kind"], m["quantity"], m["other_shop"]) for m in theirs] == [
        ("transfer_in", 3, shop.code)
    ]
    ours = client.get(f"/api/v1/shops/{shop.code}/stock/movements", headers=as_admin).json
    assert ours["movements"][0]["kind"] == "transfer_out"
    assert ours["movements"][0]["other_shop"] == other_shop.code
    # Either end may open the transfer; a shop outside it may not.
    operation_id = response.json["id"]
    for code in (shop.code, other_shop.code):
        opened = client.get(
            f"/api/v1/shops/{code}/stock/operations/{operation_id}", headers=as_admin
        )
        assert opened.json["movements"] == response.json["movements"]
    third = factory.shop("TJP")
    elsewhere = client.get(
        f"/api/v1/shops/{third.code}/stock/operations/{operation_id}", headers=as_admin
    )
    assert elsewhere.status_code == 404


def test_transfer_needs_another_existing_shop(client, factory, shop, rice, as_manager):
    factory.receive(shop, (rice, 10))
    url = f"/api/v1/shops/{shop.code}/stock/transfers"
    line = [{"sku": "RICE-10", "qty": 1}]
    same = client.post(
        url, json={"to_shop": shop.code, "lines": line, "idempotency_key": "t1"}, headers=as_manager
    )
    assert same.status_code == 422
    nowhere = client.post(
        url, json={"to_shop": "NOPE", "lines": line, "idempotency_key": "t2"}, headers=as_manager
    )
    assert (nowhere.status_code, nowhere.json["code"]) == (404, "not_found")


def test_adjustment_reasons_fix_the_direction(client, factory, shop, rice, as_manager):
    factory.receive(shop, (rice, 10))
    url = f"/api/v1/shops/{shop.code}/stock/adjustments"
    good = client.post(
        url,
        json={
            "lines": [
                {"sku": "RICE-10", "delta": -2, "reason": "damaged"},
                {"sku": "RICE-10", "delta": 1, "reason": "found"},
            ],
            "note": "老鼠咬破两袋",
            "idempotency_key": "adj-1",
        },
        headers=as_manager,
    )
    assert good.status_code == 201, good.json
    assert on_hand(shop, rice) == 9
    for delta, reason in ((2, "damaged"), (-1, "donated"), (0, "found")):
        wrong = client.post(
            url,
            json={
                "lines": [{"sku": "RICE-10", "delta": delta, "reason": reason}],
                "idempotency_key": f"adj-{reason}",
            },
            headers=as_manager,
        )
        assert wrong.status_code == 422, (delta, reason)
    unknown_reason = client.post(
        url,
        json={
            "lines": [{"sku": "RICE-10", "delta": -1, "reason": "eaten"}],
            "idempotency_key": "x",
        },
        headers=as_manager,
    )
    assert unknown_reason.status_code == 422
    assert on_hand(shop, rice) == 9


def test_stock_never_goes_below_zero_unless_the_shop_allows_it(
    client, factory, shop, rice, as_manager, as_admin
):
    factory.receive(shop, (rice, 2))
    url = f"/api/v1/shops/{shop.code}/stock/adjustments"

    def damage(key):
        return client.post(
            url,
            json={
                "lines": [{"sku": "RICE-10", "delta": -3, "reason": "damaged"}],
                "idempotency_key": key,
            },
            headers=as_manager,
        )

    refused = damage("d1")
    assert (refused.status_code, refused.json["code"]) == (409, "out_of_stock")
    assert refused.json["lines"] == [
        {"sku": "RICE-10", "name": "大米 10斤", "requested": 3, "on_hand": 2}
    ]
    assert "大米 10斤" in refused.json["detail"]
    assert on_hand(shop, rice) == 2

    assert client.patch(
        f"/api/v1/shops/{shop.code}", json={"allow_negative_stock": True}, headers=as_admin
    ).json["allow_negative_stock"]
    allowed = damage("d2")
    assert allowed.status_code == 201
    assert on_hand(shop, rice) == -1
    stock = client.get(f"/api/v1/shops/{shop.code}/stock", headers=as_manager).json
    assert stock["total_value_points"] == 0


def test_stock_list_search_reorder_levels_and_low_stock(
    client, factory, shop, rice, oil, as_manager
):
    factory.receive(shop, (rice, 3), (oil, 10))
    soap = factory.product("SOAP", name="洗衣皂", points_price=4, unit="块")
    levels = client.put(
        f"/api/v1/shops/{shop.code}/stock/reorder-levels",
        json={
            "lines": [{"sku": "RICE-10", "reorder_level": 5}, {"sku": "OIL-5L", "reorder_level": 2}]
        },
        headers=as_manager,
    )
    assert levels.status_code == 200, levels.json
    assert {i["sku"]: i["low"] for i in levels.json["items"]} == {"RICE-10": True, "OIL-5L": False}

    url = f"/api/v1/shops/{shop.code}/stock"
    everything = client.get(url, headers=as_manager).json
    assert {i["sku"]: i["on_hand"] for i in everything["items"]} == {
        "RICE-10": 3,
        "OIL-5L": 10,
        soap.sku: 0,
    }
    assert everything["total_value_points"] == 3 * 70 + 10 * 120
    low = client.get(url + "?low=true", headers=as_manager).json["items"]
    assert [(i["sku"], i["on_hand"], i["reorder_level"]) for i in low] == [("RICE-10", 3, 5)]
    found = client.get(url + "?q=菜籽油", headers=as_manager).json["items"]
    assert [i["sku"] for i in found] == ["OIL-5L"]
    by_code = client.get(url + "?q=6901234567892", headers=as_manager).json["items"]
    assert [i["sku"] for i in by_code] == ["RICE-10"]


def test_reconcile_is_clean_after_operations_and_finds_a_raw_edit(
    client, factory, shop, other_shop, rice, oil, as_manager
):
    factory.receive(shop, (rice, 10), (oil, 5))
    base = f"/api/v1/shops/{shop.code}/stock"
    steps = [
        ("adjustments", {"lines": [{"sku": "OIL-5L", "delta": -1, "reason": "expired"}]}),
        ("counts", {"lines": [{"sku": "RICE-10", "counted": 9}]}),
        ("transfers", {"to_shop": other_shop.code, "lines": [{"sku": "RICE-10", "qty": 4}]}),
        ("receipts", {"reference": "R2", "lines": [{"sku": "OIL-5L", "qty": 2}]}),
    ]
    for i, (path, body) in enumerate(steps):
        response = client.post(
            f"{base}/{path}", json=body | {"idempotency_key": f"step-{i}"}, headers=as_manager
        )
        assert response.status_code == 201, response.json
    report = client.get(f"{base}/reconcile", headers=as_manager).json
    assert report == {
        "shop_code": shop.code,
        "ok": True,
        "products_checked": 2,
        "differences": [],
    }

    db.session.execute(
        text(
            "UPDATE stock_levels SET on_hand = on_hand + 3 WHERE shop_id = :s AND product_id = :p"
        ),
        {"s": shop.id, "p": rice.id},
    )
    db.session.commit()
    report = client.get(f"{base}/reconcile", headers=as_manager).json
    assert report["ok"] is False
    assert report["differences"] == [
        {"sku": "RICE-10", "name": "大米 10斤", "cached": 8, "journal": 5, "difference": 3}
    ]
    other = client.get(
        f"/api/v1/shops/{other_shop.code}/stock/reconcile", headers=factory.headers(factory.admin)
    ).json
    assert other["ok"] is True


def test_bad_requests_are_validation_errors(client, factory, shop, rice, as_manager):
    url = f"/api/v1/shops/{shop.code}/stock/receipts"
    good_line = {"sku": "RICE-10", "qty": 1}
    bodies = [
        {"reference": "R", "lines": [{"sku": "RICE-10", "qty": 0}], "idempotency_key": "k"},
        {"reference": "R", "lines": [{"sku": "RICE-10", "qty": "3"}], "idempotency_key": "k"},
        {"reference": "R", "lines": [{"sku": "RICE-10", "qty": 1.5}], "idempotency_key": "k"},
        {"reference": "R", "lines": [], "idempotency_key": "k"},
        {"reference": "R", "lines": [good_line]},
        {"reference": "R", "lines": [good_line], "idempotency_key": "k" * 101},
        {"reference": "", "lines": [good_line], "idempotency_key": "k"},
        {"reference": "R", "lines": [good_line], "idempotency_key": "k", "extra": 1},
        {"reference": "R", "lines": "RICE-10", "idempotency_key": "k"},
    ]
    for body in bodies:
        response = client.post(url, json=body, headers=as_manager)
        assert response.status_code == 422, body
        assert response.json["code"] == "validation_error"
    not_json = client.post(url, data="[", headers=as_manager | {"Content-Type": "application/json"})
    assert not_json.status_code in (400, 422)
    twice = client.post(
        f"/api/v1/shops/{shop.code}/stock/counts",
        json={
            "lines": [{"sku": "RICE-10", "counted": 1}, {"sku": "RICE-10", "counted": 2}],
            "idempotency_key": "c",
        },
        headers=as_manager,
    )
    assert twice.status_code == 422
    assert movement_count() == 0

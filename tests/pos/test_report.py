"""The day's report: the shop's sales and returns reconciled with the central ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from core.db import db
from tests.conftest import assert_problem
from tests.pos.conftest import Counter, sale_body


def _sell(client: Any, counter: Counter, key: str, *lines: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/shops/GJY/sales",
        json=sale_body(counter, *lines, key=key),
        headers=counter.clerk_headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _report(client: Any, counter: Counter, day: str, **query: str) -> Any:
    return client.get(
        "/api/v1/shops/GJY/reports/daily",
        query_string={"date": day, **query},
        headers=counter.manager_headers,
    )


def _today(client: Any, counter: Counter, sale_id: int) -> str:
    detail = client.get(f"/api/v1/sales/{sale_id}", headers=counter.clerk_headers)
    return detail.get_json()["business_day"]


def _day_with_a_return(client: Any, counter: Counter) -> tuple[str, dict[str, Any]]:
    first = _sell(client, counter, "a", {"sku": "RICE-10", "qty": 2}, {"sku": "SOAP", "qty": 2})
    _sell(client, counter, "b", {"sku": "SOAP", "qty": 1})
    returned = client.post(
        f"/api/v1/sales/{first['sale_id']}/returns",
        json={"lines": [{"sku": "SOAP", "qty": 1}], "reason": "退货", "idempotency_key": "r"},
        headers=counter.manager_headers,
    )
    assert returned.status_code == 201
    return _today(client, counter, first["sale_id"]), first


def test_the_day_matches_the_ledger(client, counter):
    day, _first = _day_with_a_return(client, counter)
    response = _report(client, counter, day)
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    assert report["sales"] == 2
    assert report["points_redeemed"] == 155
    assert report["points_refunded"] == 5
    assert report["ledger_points"] == 150
    assert report["matches_ledger"] is True
    assert report["differences"] == []
    by_product = {p["sku"]: p for p in report["by_product"]}
    assert by_product["SOAP"]["qty_sold"] == 3
    assert by_product["SOAP"]["qty_returned"] == 1
    assert by_product["RICE-10"]["points"] == 140
    assert [c["username"] for c in report["by_clerk"]] == ["clerk-gjy"]
    empty = _report(client, counter, "2020-01-01").get_json()
    assert empty["sales"] == 0 and empty["matches_ledger"] is True


def test_a_changed_sale_shows_as_a_difference(client, counter):
    day, first = _day_with_a_return(client, counter)
    db.session.execute(
        text("UPDATE sales SET total_points = total_points + 7 WHERE id = :id"),
        {"id": first["sale_id"]},
    )
    db.session.commit()
    report = _report(client, counter, day).get_json()
    assert report["matches_ledger"] is False
    assert report["differences"] == [
        {
            "kind": "redemption",
            "sale_id": first["sale_id"],
            "receipt_no": first["receipt_no"],
            "shop_points": 157,
            "ledger_points": 150,
        }
    ]


def test_a_deleted_return_shows_as_a_difference(client, counter):
    day, _first = _day_with_a_return(client, counter)
    db.session.execute(text("DELETE FROM sale_return_lines"))
    db.session.execute(text("DELETE FROM sale_returns"))
    db.session.commit()
    report = _report(client, counter, day).get_json()
    assert report["matches_ledger"] is False
    assert [(d["kind"], d["shop_points"], d["ledger_points"]) for d in report["differences"]] == [
        ("refund", 0, 5)
    ]


def test_csv_download_and_who_may_see_it(client, counter):
    day, first = _day_with_a_return(client, counter)
    response = _report(client, counter, day, format="csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    assert first["receipt_no"] in body and "大米 10斤" in body
    clerk = client.get(
        "/api/v1/shops/GJY/reports/daily",
        query_string={"date": day},
        headers=counter.clerk_headers,
    )
    assert_problem(clerk, 403, "forbidden")
    assert_problem(
        client.get(
            "/api/v1/shops/GJY/reports/daily",
            query_string={"date": "yesterday"},
            headers=counter.manager_headers,
        ),
        422,
        "validation_error",
    )


def test_a_name_that_looks_like_a_formula_stays_text_in_the_csv(client, counter, factory):
    shop = counter.shop
    evil = factory.product("EVIL", name='=HYPERLINK("http://x","点我")', points_price=1)
    factory.receive(shop, (evil, 5))
    sold = _sell(client, counter, "evil-1", {"sku": "EVIL", "qty": 1})
    day = sold["receipt_no"].split("-")[1]
    response = _report(client, counter, f"{day[:4]}-{day[4:6]}-{day[6:]}", format="csv")
    body = response.get_data(as_text=True)
    assert "'=HYPERLINK" in body
    assert "\n=HYPERLINK" not in body and ",=HYPERLINK" not in body

"""Returns against a receipt and voids of a whole sale: bounded by what was sold."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.db import db
from ledger.services import verify_ledger
from pos.models import Sale
from tests.conftest import assert_problem
from tests.pos.conftest import Counter, balance, on_hand, sale_body


def _sale(client: Any, counter: Counter) -> dict[str, Any]:
    body = sale_body(counter, {"sku": "RICE-10", "qty": 2}, {"sku": "SOAP", "qty": 4}, key="s1")
    response = client.post("/api/v1/shops/GJY/sales", json=body, headers=counter.clerk_headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _return(client: Any, counter: Counter, sale_id: int, lines: list, key: str = "r1") -> Any:
    return client.post(
        f"/api/v1/sales/{sale_id}/returns",
        json={"lines": lines, "reason": "包装破损", "idempotency_key": key},
        headers=counter.manager_headers,
    )


def test_return_refunds_points_and_restocks_goods(client, counter):
    sale = _sale(client, counter)
    assert balance(counter.household) == 140
    response = _return(client, counter, sale["sale_id"], [{"sku": "RICE-10", "qty": 1}])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["refund_points"] == 70
    assert response.get_json()["balance_after"] == 210
    assert balance(counter.household) == 210
    assert on_hand(counter.shop, counter.rice) == 19
    detail = client.get(f"/api/v1/sales/{sale['sale_id']}", headers=counter.clerk_headers)
    returns = detail.get_json()["returns"]
    assert [(r["kind"], r["refund_points"]) for r in returns] == [("return", 70)]
    # Replaying the same return changes nothing; another body under its key conflicts.
    again = _return(client, counter, sale["sale_id"], [{"sku": "RICE-10", "qty": 1}])
    assert again.status_code == 201 and again.get_json() == response.get_json()
    assert balance(counter.household) == 210
    other = _return(client, counter, sale["sale_id"], [{"sku": "SOAP", "qty": 1}])
    assert_problem(other, 409, "idempotency_conflict")
    db.session.rollback()
    assert verify_ledger(db.session).ok


def test_returning_more_than_sold_and_not_yet_returned_is_refused(client, counter):
    sale = _sale(client, counter)
    assert_problem(
        _return(client, counter, sale["sale_id"], [{"sku": "RICE-10", "qty": 3}]),
        409,
        "return_exceeds_sale",
    )
    assert _return(client, counter, sale["sale_id"], [{"sku": "SOAP", "qty": 3}]).status_code == 201
    problem = assert_problem(
        _return(client, counter, sale["sale_id"], [{"sku": "SOAP", "qty": 2}], key="r2"),
        409,
        "return_exceeds_sale",
    )
    assert problem["lines"] == [{"sku": "SOAP", "requested": 2, "returnable": 1}]
    assert_problem(
        _return(client, counter, sale["sale_id"], [{"sku": "OIL-5L", "qty": 1}], key="r3"),
        409,
        "return_exceeds_sale",
    )
    assert balance(counter.household) == 155
    assert on_hand(counter.shop, counter.soap) == 99


def test_clerks_may_not_take_returns(client, counter):
    sale = _sale(client, counter)
    response = client.post(
        f"/api/v1/sales/{sale['sale_id']}/returns",
        json={"lines": [{"sku": "SOAP", "qty": 1}], "reason": "x", "idempotency_key": "r"},
        headers=counter.clerk_headers,
    )
    assert_problem(response, 403, "forbidden")


def _void(client: Any, counter: Counter, sale_id: int, key: str = "v1", headers=None) -> Any:
    return client.post(
        f"/api/v1/sales/{sale_id}/void",
        json={"reason": "收银错误", "idempotency_key": key},
        headers=headers or counter.manager_headers,
    )


def test_manager_voids_a_sale_of_today(client, counter):
    sale = _sale(client, counter)
    _return(client, counter, sale["sale_id"], [{"sku": "SOAP", "qty": 1}])
    response = _void(client, counter, sale["sale_id"])
    assert response.status_code == 201, response.get_json()
    # Only what was not yet returned: two bags of rice and three bars of soap.
    assert response.get_json()["refund_points"] == 155
    assert balance(counter.household) == 300
    assert on_hand(counter.shop, counter.rice) == 20
    assert on_hand(counter.shop, counter.soap) == 100
    detail = client.get(f"/api/v1/sales/{sale['sale_id']}", headers=counter.clerk_headers)
    assert detail.get_json()["status"] == "voided"
    assert_problem(_void(client, counter, sale["sale_id"], key="v2"), 409, "conflict")
    assert_problem(
        _return(client, counter, sale["sale_id"], [{"sku": "SOAP", "qty": 1}], key="r9"),
        409,
        "conflict",
    )
    db.session.rollback()
    assert verify_ledger(db.session).ok


def test_clerks_may_not_void_and_yesterdays_sale_cannot_be_voided(client, counter):
    sale = _sale(client, counter)
    assert_problem(
        _void(client, counter, sale["sale_id"], headers=counter.clerk_headers), 403, "forbidden"
    )
    row = db.session.get(Sale, sale["sale_id"])
    row.business_day = row.business_day - timedelta(days=1)
    db.session.commit()
    assert_problem(_void(client, counter, sale["sale_id"]), 409, "conflict")
    assert balance(counter.household) == 140

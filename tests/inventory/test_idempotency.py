"""Every stock operation: replayed by key, refused with another body, all-or-nothing by line."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import db
from inventory.models import StockOperation
from tests.inventory.helpers import movement_count, on_hand

RICE = "RICE-10"
OIL = "OIL-5L"

# path, a good body, the same key's different body, and a body whose last line is unknown.
OPERATIONS: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "receipt": (
        "receipts",
        {"reference": "R1", "lines": [{"sku": RICE, "qty": 2}, {"sku": OIL, "qty": 1}]},
        {"reference": "R1", "lines": [{"sku": RICE, "qty": 3}, {"sku": OIL, "qty": 1}]},
        {"reference": "R1", "lines": [{"sku": RICE, "qty": 2}, {"sku": "NOPE", "qty": 1}]},
    ),
    "adjustment": (
        "adjustments",
        {
            "lines": [
                {"sku": RICE, "delta": -1, "reason": "damaged"},
                {"sku": OIL, "delta": 1, "reason": "found"},
            ]
        },
        {"lines": [{"sku": RICE, "delta": -2, "reason": "damaged"}]},
        {
            "lines": [
                {"sku": RICE, "delta": -1, "reason": "damaged"},
                {"sku": "NOPE", "delta": 1, "reason": "found"},
            ]
        },
    ),
    "count": (
        "counts",
        {"lines": [{"sku": RICE, "counted": 9}, {"sku": OIL, "counted": 6}]},
        {"lines": [{"sku": RICE, "counted": 8}, {"sku": OIL, "counted": 6}]},
        {"lines": [{"sku": RICE, "counted": 9}, {"sku": "NOPE", "counted": 1}]},
    ),
    "transfer": (
        "transfers",
        {"to_shop": "ZJB", "lines": [{"sku": RICE, "qty": 2}, {"sku": OIL, "qty": 1}]},
        {"to_shop": "ZJB", "lines": [{"sku": RICE, "qty": 3}, {"sku": OIL, "qty": 1}]},
        {"to_shop": "ZJB", "lines": [{"sku": RICE, "qty": 2}, {"sku": "NOPE", "qty": 1}]},
    ),
}

# Bodies where the first line is fine and a later one would take stock below zero.
SHORT = {
    "adjustment": {
        "lines": [
            {"sku": OIL, "delta": 1, "reason": "donated"},
            {"sku": RICE, "delta": -11, "reason": "expired"},
        ]
    },
    "transfer": {"to_shop": "ZJB", "lines": [{"sku": OIL, "qty": 1}, {"sku": RICE, "qty": 11}]},
}


@pytest.fixture
def stocked(factory, shop, other_shop, rice, oil):
    factory.receive(shop, (rice, 10), (oil, 5))
    return shop, other_shop, rice, oil


def snapshot(stocked) -> tuple[int, ...]:
    shop, other_shop, rice, oil = stocked
    operations = db.session.scalar(select(func.count(StockOperation.id)))
    return (
        movement_count(),
        operations,
        on_hand(shop, rice),
        on_hand(shop, oil),
        on_hand(other_shop, rice),
        on_hand(other_shop, oil),
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_replay_answers_the_same_and_another_body_conflicts(client, stocked, as_manager, operation):
    path, body, different, _unknown = OPERATIONS[operation]
    url = f"/api/v1/shops/GJY/stock/{path}"
    first = client.post(url, json=body | {"idempotency_key": "same-key"}, headers=as_manager)
    assert first.status_code == 201, first.json
    after_first = snapshot(stocked)

    again = client.post(url, json=body | {"idempotency_key": "same-key"}, headers=as_manager)
    assert again.status_code == 201
    assert again.json == first.json
    assert snapshot(stocked) == after_first

    clash = client.post(url, json=different | {"idempotency_key": "same-key"}, headers=as_manager)
    assert (clash.status_code, clash.json["code"]) == (409, "idempotency_conflict")
    assert snapshot(stocked) == after_first


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_unknown_line_changes_nothing(client, stocked, as_manager, operation):
    path, body, _different, unknown = OPERATIONS[operation]
    url = f"/api/v1/shops/GJY/stock/{path}"
    before = snapshot(stocked)
    refused = client.post(url, json=unknown | {"idempotency_key": "k1"}, headers=as_manager)
    assert (refused.status_code, refused.json["code"]) == (404, "unknown_product")
    assert refused.json["products"] == ["NOPE"]
    assert snapshot(stocked) == before
    # The refused request used up nothing: its key still works for the corrected body.
    fixed = client.post(url, json=body | {"idempotency_key": "k1"}, headers=as_manager)
    assert fixed.status_code == 201


@pytest.mark.parametrize("operation", SHORT)
def test_a_short_line_refuses_every_line(client, stocked, as_manager, operation):
    path = OPERATIONS[operation][0]
    before = snapshot(stocked)
    refused = client.post(
        f"/api/v1/shops/GJY/stock/{path}",
        json=SHORT[operation] | {"idempotency_key": "short"},
        headers=as_manager,
    )
    assert (refused.status_code, refused.json["code"]) == (409, "out_of_stock")
    assert [(line["sku"], line["on_hand"]) for line in refused.json["lines"]] == [(RICE, 10)]
    assert snapshot(stocked) == before

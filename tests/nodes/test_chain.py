"""nodes.chain: the one definition of an offline sale's hash, which the node imports too."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nodes import chain


def _fields(**change):
    base = {
        "shop_code": "GJY",
        "seq": 7,
        "idempotency_key": "k-7",
        "receipt_no": "GJY-20261203-L0007",
        "made_at": datetime(2026, 12, 3, 17, 30, tzinfo=timezone(timedelta(hours=8))),
        "household_id": 42,
        "card_digest": None,
        "lines": [{"sku": "RICE-10", "qty": 2}, {"sku": "SOAP", "qty": 1}],
    }
    base.update(change)
    return chain.sale_fields(**base)


def test_the_hash_is_sha256_of_prev_hash_and_canonical_json():
    fields = _fields()
    text = (
        '{"card_digest":null,"household_id":42,"idempotency_key":"k-7",'
        '"lines":[["RICE-10",2],["SOAP",1]],"made_at":"2026-12-03T09:30:00.000000+00:00",'
        '"receipt_no":"GJY-20261203-L0007","seq":7,"shop_code":"GJY"}'
    )
    assert chain.canonical_json(fields) == text
    expected = hashlib.sha256((chain.GENESIS + text).encode()).hexdigest()
    assert chain.sale_hash(chain.GENESIS, fields) == expected


def test_one_moment_in_any_offset_is_one_hash():
    utc = _fields(made_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    assert chain.sale_hash("a" * 64, utc) == chain.sale_hash("a" * 64, _fields())


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"idempotency_key": "k-8"},
        {"household_id": 43},
        {"card_digest": "d"},
        {"lines": [{"sku": "RICE-10", "qty": 3}, {"sku": "SOAP", "qty": 1}]},
        {"lines": [{"sku": "SOAP", "qty": 1}, {"sku": "RICE-10", "qty": 2}]},
        {"made_at": datetime(2026, 12, 3, 9, 30, 0, 1, tzinfo=UTC)},
        {"shop_code": "BSP"},
    ],
)
def test_every_field_and_the_predecessor_count(change):
    assert chain.sale_hash("a" * 64, _fields(**change)) != chain.sale_hash("a" * 64, _fields())
    assert chain.sale_hash("b" * 64, _fields()) != chain.sale_hash("a" * 64, _fields())


def test_a_time_without_offset_or_a_missing_field_is_refused():
    with pytest.raises(ValueError):
        _fields(made_at=datetime(2026, 12, 3, 9, 30))
    with pytest.raises(ValueError):
        chain.sale_hash(chain.GENESIS, {"seq": 1})

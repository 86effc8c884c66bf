"""Selling offline from the node's store: allowance, cards, stock, the chain, receipts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.errors import (
    CardRevoked,
    Forbidden,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidCard,
    OutOfStock,
    Unavailable,
    UnknownProduct,
)
from nodes import chain
from nodes.local import offline
from nodes.local.models import NodeProduct, OutboxSale
from nodes.local.store import Store, set_state
from tests.nodes.local.conftest import NOW, payload


def sell(store: Store, key: str, lines: list[tuple[str, int]], **kwargs: Any) -> dict[str, Any]:
    customer: dict[str, Any] = {"card_payload": payload(7)}
    if "household_id" in kwargs or "card_payload" in kwargs:
        customer = {}
    with store.session() as session:
        return offline.sell_offline(
            session,
            username="clerk-gjy",
            shop_code="GJY",
            lines=[{"sku": sku, "qty": qty} for sku, qty in lines],
            idempotency_key=key,
            now=kwargs.pop("now", NOW),
            **customer,
            **kwargs,
        )


def test_an_offline_sale_answers_like_the_county_and_is_chained(store: Store) -> None:
    first = sell(store, "k1", [("RICE-10", 1), ("SOAP", 2)])
    assert first == {
        "sale_id": offline.OFFLINE_ID_BASE + 1,
        "receipt_no": "GJY-20261204-L0001",
        "shop_code": "GJY",
        "household_id": 7,
        "total_points": 90,
        "balance_after": 510,
        "lines": [
            {"sku": "RICE-10", "name": "大米", "qty": 1, "points_each": 70, "points": 70},
            {"sku": "SOAP", "name": "肥皂", "qty": 2, "points_each": 10, "points": 20},
        ],
        "offline": True,
    }
    second = sell(store, "k2", [("soap", 1)])
    assert second["receipt_no"] == "GJY-20261204-L0002"
    with store.session() as session:
        rows = session.scalars(select(OutboxSale).order_by(OutboxSale.seq)).all()
        assert [r.seq for r in rows] == [1, 2]
        head = chain.GENESIS
        for row in rows:
            fields = chain.sale_fields(
                shop_code="GJY",
                seq=row.seq,
                idempotency_key=row.idempotency_key,
                receipt_no=row.receipt_no,
                made_at=row.made_at,
                household_id=row.household_id,
                card_digest=row.card_digest,
                lines=row.lines,
            )
            assert row.prev_hash == head
            head = chain.sale_hash(head, fields)
            assert row.hash == head
        assert session.get(NodeProduct, "RICE-10").on_hand == 4
        assert session.get(NodeProduct, "SOAP").on_hand == 497
        assert offline.pending_sales(session) == 2


def test_a_retry_of_the_key_answers_the_same_sale_and_another_body_is_refused(
    store: Store,
) -> None:
    first = sell(store, "k1", [("SOAP", 1)])
    assert sell(store, "k1", [("SOAP", 1)]) == first
    with pytest.raises(IdempotencyConflict):
        sell(store, "k1", [("SOAP", 2)])
    with store.session() as session:
        assert offline.pending_sales(session) == 1


def test_the_allowance_bounds_offline_spending_and_says_so(store: Store) -> None:
    sell(store, "k1", [("RICE-10", 2)])  # 140 of 200
    with pytest.raises(InsufficientPoints) as refused:
        sell(store, "k2", [("RICE-10", 1)])
    assert refused.value.extra["offline_allowance"] == 60
    assert "offline allowance" in str(refused.value.detail)
    sell(store, "k3", [("SOAP", 6)])  # exactly what is left
    with store.session() as session:
        customer = offline.find_customer(session, shop_code="GJY", card_payload=payload(7), now=NOW)
    assert customer["spendable"] == 0
    assert customer["balance"] == 400


def test_households_and_cards_the_node_does_not_hold(store: Store) -> None:
    with pytest.raises(InsufficientPoints) as other_village:
        sell(store, "k1", [("SOAP", 1)], household_id=99)
    assert "home shop" in str(other_village.value.detail)
    with pytest.raises(InsufficientPoints):
        sell(store, "k2", [("SOAP", 1)], card_payload=payload(99))
    with pytest.raises(InvalidCard):
        sell(store, "k3", [("SOAP", 1)], card_payload="IC1.NOT.A.CARD")
    with pytest.raises(CardRevoked):
        sell(store, "k4", [("SOAP", 1)], card_payload=payload(8))
    # The same card read in lower case, as a scanner with Caps Lock types it.
    assert sell(store, "k5", [("SOAP", 1)], card_payload=payload(8, 2).lower())["total_points"]
    with store.session() as session, pytest.raises(Forbidden):
        offline.find_goods(session, shop_code="BSP", code="SOAP")


def test_stock_unknown_goods_and_the_window(store: Store) -> None:
    with store.session() as session:
        session.get(NodeProduct, "RICE-10").on_hand = 1
    with pytest.raises(OutOfStock) as short:
        sell(store, "k1", [("RICE-10", 2)], household_id=7)
    assert short.value.extra["lines"][0]["on_hand"] == 1
    with store.session() as session:
        session.get(NodeProduct, "RICE-10").allow_negative_stock = True
    assert sell(store, "k1", [("RICE-10", 2)], household_id=7)["total_points"] == 140
    with pytest.raises(UnknownProduct):
        sell(store, "k2", [("NOPE", 1)])
    with store.session() as session:
        set_state(session, offline.OFFLINE_SINCE, (NOW - timedelta(hours=73)).isoformat())
    with pytest.raises(Unavailable) as stopped:
        sell(store, "k3", [("SOAP", 1)])
    assert "72" in str(stopped.value.detail)
    assert sell(store, "k4", [("SOAP", 1)], max_hours=100)["offline"] is True


def test_receipt_numbers_follow_the_shops_business_day(store: Store) -> None:
    # 23:30 and 00:30 in the shop: two days, each numbered from L0001.
    late = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
    assert sell(store, "k1", [("SOAP", 1)], now=late)["receipt_no"] == "GJY-20261204-L0001"
    after = late + timedelta(hours=1)
    assert sell(store, "k2", [("SOAP", 1)], now=after)["receipt_no"] == "GJY-20261205-L0001"
    # A refused sale takes no number.
    with pytest.raises(InsufficientPoints):
        sell(store, "k3", [("RICE-10", 9)], now=after)
    assert sell(store, "k4", [("SOAP", 1)], now=after)["receipt_no"] == "GJY-20261205-L0002"


def test_sales_stamped_with_the_countys_clock(store: Store) -> None:
    with store.session() as session:
        set_state(session, offline.CLOCK_SKEW, 3600.0)
    sell(store, "k1", [("SOAP", 1)])
    with store.session() as session:
        assert session.get(OutboxSale, 1).made_at == NOW + timedelta(hours=1)


def test_two_tabs_never_share_a_number(store: Store) -> None:
    answers: list[str] = []
    errors: list[BaseException] = []

    def tab(n: int) -> None:
        try:
            answers.append(sell(store, f"tab-{n}", [("SOAP", 1)])["receipt_no"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(answers) == [f"GJY-20261204-L{n:04d}" for n in range(1, 9)]


def test_look_ups_answer_in_the_countys_shapes(store: Store) -> None:
    with store.session() as session:
        goods = offline.find_goods(session, shop_code="GJY", code="6901234567892")
        assert goods["sku"] == "RICE-10" and goods["on_hand"] == 5
        assert offline.find_goods(session, shop_code="gjy", code="soap")["sku"] == "SOAP"
        resolved = offline.resolve_card(session, card_payload=payload(7))
        assert resolved["household"]["members"] == [{"name": "郑大山"}, {"name": "李小花"}]
        assert resolved["card"]["serial"] == "000007-01"
        customer = offline.find_customer(session, shop_code="GJY", card_payload=payload(7), now=NOW)
        assert customer["members"] == ["郑大山", "李小花"]
        assert customer["spendable"] == 200 and customer["reserved_for"] == "高家堰超市"


def test_an_online_sale_moves_the_allowance_and_the_stock(store: Store) -> None:
    sell(store, "k1", [("SOAP", 5)])
    with store.session() as session:
        row = session.get(OutboxSale, 1)
        row.synced_at = NOW + timedelta(seconds=1)
    answer = {
        "household_id": 7,
        "balance_after": 220,
        "lines": [{"sku": "RICE-10", "qty": 2}],
    }
    with store.session() as session:
        offline.note_online_sale(session, answer, now=NOW + timedelta(seconds=2))
    with store.session() as session:
        customer = offline.find_customer(session, shop_code="GJY", card_payload=payload(7), now=NOW)
        # 220 - floor 100 = 120, and the synced sale is in the county's balance already.
        assert customer["spendable"] == 120
        assert session.get(NodeProduct, "RICE-10").on_hand == 3
        status = offline.node_status(session, now=NOW, online=True)
    assert status["pending_sales"] == 0
    assert status["allowance_households"] == 2


def test_offline_receipts_say_so(store: Store) -> None:
    sale = sell(store, "k1", [("RICE-10", 1)])
    with store.session() as session:
        text, mimetype = offline.offline_receipt(session, sale["sale_id"], fmt="text")
        assert mimetype == "text/plain"
        # Outside the local app (no catalogues) the words are the msgids; the node prints
        # them in Chinese (test_printer).
        assert "GJY-20261204-L0001" in text and "*** Offline sale ***" in text
        data, _ = offline.offline_receipt(session, sale["sale_id"], fmt="escpos", paper=80)
        assert isinstance(data, bytes) and data
        detail = offline.get_offline_sale(session, sale["sale_id"])
        assert detail["status"] == "completed" and detail["business_day"] == "2026-12-04"
        assert offline.print_state(session, sale["sale_id"])["state"] == "no_printer"


def test_the_feed_leaves_unsent_sales_out_of_the_stock(store: Store) -> None:
    from nodes.local.sync import apply_feed_page
    from tests.nodes.local.conftest import feed_page

    sell(store, "k1", [("SOAP", 2)])
    with store.session() as session:
        apply_feed_page(session, feed_page(full=False), now=NOW)
    with store.session() as session:
        assert session.get(NodeProduct, "SOAP").on_hand == 498


def test_a_household_that_spent_its_allowance_offline_no_longer_counts(store: Store) -> None:
    with store.session() as session:
        assert offline.node_status(session, now=NOW, online=False)["allowance_households"] == 2
    # Household 8 may spend 50 offline: five bars of soap use it all.
    sell(store, "k-all", [("SOAP", 5)], card_payload=payload(8, 2))
    sell(store, "k-some", [("SOAP", 1)])
    with store.session() as session:
        status = offline.node_status(session, now=NOW, online=False)
    assert status["allowance_households"] == 1
    assert status["pending_sales"] == 2

"""The syncer against a real county on a loopback port: the outbox drained exactly once.

The county's feed is played by a small stand-in in front of the county app (its data the
county's own), so these tests hold whatever the feed's implementation does.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from core.db import db
from nodes.local import offline
from nodes.local.models import NodeHousehold, NodeProduct, OutboxSale
from nodes.local.store import Store, get_state, open_store, set_state
from nodes.local.sync import CURSOR, Syncer
from nodes.models import NodeSale
from tests.conftest import serve_wsgi
from tests.nodes.conftest import County, balance


class CountyWithFeed:
    """The county app, with the node's feed and report answered from what the test sets."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pages: list[dict[str, Any]] = []
        self.cursors: list[str] = []
        self.reports: list[dict[str, Any]] = []
        # True: the county's own feed and report answer.
        self.real = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        if self.real:
            return self.app(environ, start_response)
        if path == "/api/v1/node/feed":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            self.cursors.append(query.get("cursor", [""])[0])
            page = self.pages.pop(0) if self.pages else self.empty()
            return self._json(start_response, page)
        if path == "/api/v1/node/report":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            self.reports.append(json.loads(environ["wsgi.input"].read(length)))
            return self._json(start_response, {})
        return self.app(environ, start_response)

    @staticmethod
    def empty() -> dict[str, Any]:
        return {"cursor": "c-last", "more": False, "full": False, "products": []}

    @staticmethod
    def _json(start_response: Callable[..., Any], body: Any) -> list[bytes]:
        data = json.dumps(body, ensure_ascii=False).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [data]


@pytest.fixture
def county_server(app: Flask) -> Iterator[tuple[str, CountyWithFeed]]:
    wrapped = CountyWithFeed(app)
    with serve_wsgi(wrapped) as url:
        yield url, wrapped


def full_feed(county: County, payload: str, **changes: Any) -> dict[str, Any]:
    from nodes.local.offline import card_digest

    household = county.household
    page = {
        "cursor": "c1",
        "more": False,
        "full": True,
        "now": "2026-12-04T10:00:00+08:00",
        "shop": {"code": "GJY", "name": "高家堰超市"},
        "offline_allowance_points": 200,
        "offline_max_hours": 72,
        "products": [
            {
                "sku": "RICE-10",
                "barcode": None,
                "name": "大米",
                "unit": "袋",
                "points_price": 70,
                "active": True,
                "allow_negative_stock": False,
                "on_hand": 100,
            },
            {
                "sku": "SOAP",
                "barcode": None,
                "name": "肥皂",
                "unit": "块",
                "points_price": 10,
                "active": True,
                "allow_negative_stock": False,
                "on_hand": 500,
            },
        ],
        "households": [
            {
                "id": household.id,
                "village_code": "ZJB",
                "village_name": "郑家榜村",
                "head_name": household.head_name,
                "members": [],
                "active": True,
                "floor": 100,
                "balance": 600,
                "allowance": 200,
            },
        ],
        "cards": [
            {
                "digest": card_digest(payload),
                "household_id": household.id,
                "serial": "000001-01",
                "active": True,
            },
        ],
        "users": [{"username": "clerk-gjy", "role": "clerk", "shop_code": "GJY", "active": True}],
    }
    page.update(changes)
    # SQLite: the test's own session must not hold the write lock the county needs.
    db.session.rollback()
    return page


@pytest.fixture
def node(
    county: County, county_server: tuple[str, CountyWithFeed], tmp_path: Path
) -> Iterator[tuple[Store, Syncer, CountyWithFeed, tuple[str, int]]]:
    url, fake = county_server
    _card, payload = county.factory.card(county.household)
    fake.pages.append(full_feed(county, payload))
    hid = county.household.id
    db.session.rollback()
    store = open_store(tmp_path / "node")
    token = county.node.headers["Authorization"].removeprefix("Bearer ")
    syncer = Syncer(store, server_url=url, token=token, shop_code="GJY")
    assert syncer.run_once() is True
    yield store, syncer, fake, (payload, hid)
    store.close()


def sell(store: Store, key: str, household_id: int, lines: list[tuple[str, int]]) -> Any:
    from core.db import utcnow

    with store.session() as session:
        return offline.sell_offline(
            session,
            username="clerk-gjy",
            shop_code="GJY",
            lines=[{"sku": sku, "qty": qty} for sku, qty in lines],
            idempotency_key=key,
            household_id=household_id,
            now=utcnow(),
        )


def county_sales() -> list[tuple[int, str]]:
    db.session.rollback()
    rows = db.session.execute(select(NodeSale.seq, NodeSale.receipt_no).order_by(NodeSale.seq))
    found = [tuple(row) for row in rows]
    db.session.rollback()
    return found


def outbox(store: Store) -> list[OutboxSale]:
    with store.session() as session:
        return list(session.scalars(select(OutboxSale).order_by(OutboxSale.seq)))


def test_offline_sales_reach_the_county_once_in_order(node: Any, county: County) -> None:
    store, syncer, fake, (_payload, hid) = node
    with store.session() as session:
        assert session.get(NodeHousehold, hid).allowance == 200
        assert get_state(session, offline.SHOP)["code"] == "GJY"
    first = sell(store, "n-1", hid, [("RICE-10", 1)])
    second = sell(store, "n-2", hid, [("SOAP", 3)])
    assert syncer.run_once() is True
    assert county_sales() == [(1, first["receipt_no"]), (2, second["receipt_no"])]
    assert balance(hid) == 600 - 70 - 30
    rows = outbox(store)
    assert all(row.synced_at and row.county_sale_id for row in rows)
    assert fake.reports[-1]["pending_sales"] == 0
    # Another round sends nothing again.
    assert syncer.run_once() is True
    assert len(county_sales()) == 2


def test_a_lost_answer_is_replayed_not_doubled(node: Any, county: County) -> None:
    store, syncer, _fake, (_payload, hid) = node
    sell(store, "n-1", hid, [("RICE-10", 1)])

    def crash(event: str, seq: int) -> None:
        raise RuntimeError(f"killed after the county took {seq}")

    syncer.hook = crash
    with pytest.raises(RuntimeError):
        syncer.run_once()
    assert county_sales() == [(1, "GJY-" + outbox(store)[0].receipt_no[4:])]
    assert outbox(store)[0].synced_at is None
    syncer.hook = lambda _event, _seq: None
    assert syncer.run_once() is True
    assert len(county_sales()) == 1
    assert balance(hid) == 530
    assert outbox(store)[0].county_sale_id is not None


def test_sales_the_county_lacks_are_sent_again_from_where_it_expects(
    node: Any, county: County
) -> None:
    store, syncer, _fake, (_payload, hid) = node
    sell(store, "n-1", hid, [("SOAP", 1)])
    sell(store, "n-2", hid, [("SOAP", 2)])
    with store.session() as session:
        # As if the node had written down an answer the county never committed.
        session.get(OutboxSale, 1).synced_at = session.get(OutboxSale, 1).made_at
    assert syncer.run_once() is True
    assert [seq for seq, _ in county_sales()] == [1, 2]
    assert all(row.synced_at for row in outbox(store))


def test_a_refused_sale_stops_the_drain_and_is_never_skipped(node: Any, county: County) -> None:
    store, syncer, _fake, (_payload, hid) = node
    sell(store, "n-1", hid, [("SOAP", 1)])
    sell(store, "n-2", hid, [("SOAP", 1)])
    with store.session() as session:
        # A broken link: the county cannot take it, nor anything after it.
        session.get(OutboxSale, 1).prev_hash = "1" * 64
    assert syncer.run_once() is True
    assert county_sales() == []
    made_at = outbox(store)[0].made_at
    with store.session() as session:
        error = get_state(session, offline.SYNC_ERROR)
        status = offline.node_status(session, now=made_at, online=True)
    assert error["seq"] == 1 and error["code"] == "conflict"
    assert status["pending_sales"] == 2 and status["sync_error"]["seq"] == 1


def test_a_reinstalled_node_continues_the_chain(
    node: Any, county: County, county_server: Any, tmp_path: Path
) -> None:
    store, syncer, fake, (payload, hid) = node
    sell(store, "n-1", hid, [("SOAP", 1)])
    assert syncer.run_once() is True
    fresh = open_store(tmp_path / "again")
    fake.pages.append(full_feed(county, payload))
    again = Syncer(fresh, server_url=syncer.server, token=syncer.token, shop_code="GJY")
    assert again.run_once() is True
    assert sell(fresh, "n-2", hid, [("SOAP", 1)])["sale_id"] == offline.OFFLINE_ID_BASE + 2
    assert again.run_once() is True
    assert [seq for seq, _ in county_sales()] == [1, 2]
    fresh.close()


def test_full_and_incremental_feeds(node: Any, county: County) -> None:
    store, syncer, fake, (payload, hid) = node
    first = full_feed(county, payload, cursor="f1", more=True, households=[], cards=[])
    first["products"] = first["products"][:1]
    rest = full_feed(county, payload, cursor="f2", products=[])
    fake.pages += [first, rest]
    with store.session() as session:
        set_state(session, CURSOR, "")  # the county said: start again, whole
    assert syncer.run_once() is True
    with store.session() as session:
        assert session.get(NodeProduct, "SOAP") is None  # no longer listed
        assert session.get(NodeProduct, "RICE-10") is not None
        assert session.get(NodeHousehold, hid) is not None
    changed = full_feed(county, payload, cursor="i1", full=False, products=[], cards=[])
    changed["households"][0]["balance"] = 420
    changed["households"][0]["allowance"] = 150
    fake.pages.append(changed)
    assert syncer.run_once() is True
    # The full pass from an empty cursor, its second page, then changes since its end.
    assert fake.cursors[-3:] == ["", "f1", "f2"]
    with store.session() as session:
        household = session.get(NodeHousehold, hid)
        assert (household.balance, household.allowance) == (420, 150)
        assert session.get(NodeProduct, "RICE-10") is not None


def test_a_county_that_does_not_answer_puts_the_node_offline(tmp_path: Path) -> None:
    store = open_store(tmp_path / "node")
    syncer = Syncer(store, server_url="http://127.0.0.1:9", token="t", shop_code="GJY")
    assert syncer.run_once() is False
    assert syncer.online is False
    with store.session() as session:
        since = get_state(session, offline.OFFLINE_SINCE)
        assert since
        assert (
            offline.node_status(session, now=offline.parse_time(since), online=False)[
                "offline_since"
            ]
            == since
        )
        assert session.scalar(select(func.count()).select_from(OutboxSale)) == 0
    store.close()


def test_the_countys_own_feed_fills_the_store_and_follows_the_sales(
    county: County, county_server: tuple[str, CountyWithFeed], tmp_path: Path
) -> None:
    url, fake = county_server
    fake.real = True
    _card, payload = county.factory.card(county.household)
    hid = county.household.id
    db.session.rollback()
    store = open_store(tmp_path / "node")
    token = county.node.headers["Authorization"].removeprefix("Bearer ")
    syncer = Syncer(store, server_url=url, token=token, shop_code="GJY")
    assert syncer.run_once() is True
    with store.session() as session:
        household = session.get(NodeHousehold, hid)
        assert (household.balance, household.floor, household.allowance) == (600, 100, 200)
        assert session.get(NodeProduct, "RICE-10").on_hand == 100
        customer = offline.find_customer(
            session, shop_code="GJY", card_payload=payload, now=household.synced_at
        )
        assert customer["spendable"] == 200
        assert get_state(session, offline.SYNC_ERROR) is None
    with store.session() as session:
        answer = offline.sell_offline(
            session,
            username="clerk-gjy",
            shop_code="GJY",
            lines=[{"sku": "RICE-10", "qty": 2}],
            idempotency_key="real-1",
            card_payload=payload,
            now=customer_time(store, hid),
        )
    assert answer["balance_after"] == 460
    assert syncer.run_once() is True
    assert balance(hid) == 460
    with store.session() as session:
        household = session.get(NodeHousehold, hid)
        # The feed shows the sale now: the allowance is the county's again, none held twice.
        assert household.balance == 460
        assert offline.available_allowance(session, household) == household.allowance
        assert session.get(NodeProduct, "RICE-10").on_hand == 98
        assert offline.pending_sales(session) == 0
    store.close()


def customer_time(store: Store, hid: int) -> Any:
    with store.session() as session:
        return session.get(NodeHousehold, hid).synced_at

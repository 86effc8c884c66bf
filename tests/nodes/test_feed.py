"""GET /api/v1/node/feed: what a node needs to sell offline, in full, then as changes."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import datetime
from typing import Any

import pytest

from accounts.auth import Role
from core.db import db, utcnow
from inventory import services as inventory
from ledger import services as ledger
from member_cards import services as cards
from tests.conftest import assert_problem
from tests.nodes.conftest import online_sale, through_node


def _pull(client: Any, node: Any, cursor: str | None = None, limit: int | None = None) -> Any:
    query = {}
    if cursor is not None:
        query["cursor"] = cursor
    if limit is not None:
        query["limit"] = str(limit)
    r = client.get("/api/v1/node/feed", query_string=query, headers=node.headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def _drain(client: Any, node: Any, cursor: str | None = None, limit: int | None = None) -> Any:
    """Every page of one round, merged as the node would: (pages, final cursor, merged)."""
    pages, merged = [], {"households": {}, "cards": {}, "products": {}, "users": {}}
    while True:
        page = _pull(client, node, cursor, limit)
        pages.append(page)
        for h in page["households"]:
            merged["households"][h["id"]] = h
        for c in page["cards"]:
            merged["cards"][c["digest"]] = c
        for p in page["products"]:
            merged["products"][p["sku"]] = p
        for u in page["users"]:
            merged["users"][u["username"]] = u
        cursor = page["cursor"]
        if not page["more"]:
            return pages, cursor, merged


def test_a_full_sync_holds_the_node_villages_households_cards_goods_and_staff(
    client, county, factory
):
    household = county.household
    _card, payload = factory.card(household)
    other_village = factory.village("QTP", name="青树坪村")
    stranger = factory.household(other_village, balance=500)
    factory.card(stranger)
    factory.user(Role.CLERK, shop="GJY")
    factory.user(Role.CLERK, shop="BSP")
    page = _pull(client, county.node)
    assert page["full"] is True and page["more"] is False
    assert page["shop"] == {"code": "GJY", "name": "高家堰超市"}
    assert page["offline_allowance_points"] == 200 and page["offline_max_hours"] == 72
    assert datetime.fromisoformat(page["now"]).utcoffset() is not None
    # Only the households of villages whose home shop is GJY.
    assert [h["id"] for h in page["households"]] == [household.id]
    h = page["households"][0]
    assert h["village_code"] == "ZJB" and h["village_name"] == "郑家榜村"
    assert h["members"] == ["覃德华", "向秀英", "覃小红"]
    assert (h["balance"], h["floor"], h["allowance"], h["active"]) == (600, 100, 200, True)
    # Cards of those households only, by the digest of the payload the card carries.
    assert [c["household_id"] for c in page["cards"]] == [household.id]
    assert page["cards"][0]["digest"] == hashlib.sha256(payload.encode()).hexdigest()
    assert page["cards"][0]["active"] is True
    rice = next(p for p in page["products"] if p["sku"] == "RICE-10")
    assert (rice["points_price"], rice["on_hand"], rice["active"]) == (70, 100, True)
    assert set(rice) >= {"barcode", "name", "unit", "allow_negative_stock"}
    shops = {u["shop_code"] for u in page["users"] if u["role"] != "admin"}
    assert shops == {"GJY"}
    assert any(u["role"] == "admin" for u in page["users"])


def test_the_allowance_is_the_cap_or_what_lies_above_the_floor(client, county, factory):
    low = factory.household(county.village, balance=150)
    broke = factory.household(county.village, balance=0)
    page = _pull(client, county.node)
    allowance = {h["id"]: h["allowance"] for h in page["households"]}
    assert allowance == {county.household.id: 200, low.id: 50, broke.id: 0}


def test_pages_cover_everything_once_and_then_only_changes_come(client, county, factory):
    more = [factory.household(county.village, balance=10 * i) for i in range(1, 8)]
    pages, cursor, merged = _drain(client, county.node, limit=3)
    assert [len(p["households"]) for p in pages] == [3, 3, 2]
    assert all(p["full"] for p in pages) and [p["more"] for p in pages] == [True, True, False]
    assert sorted(merged["households"]) == sorted([county.household.id] + [h.id for h in more])
    # Goods and staff come once per round, on its first page.
    assert pages[0]["products"] and not pages[1]["products"]
    # Nothing changed: an idle call is empty (the late-commit window may repeat a little).
    idle = _pull(client, county.node, cursor)
    assert idle["full"] is False and idle["more"] is False
    # A sale elsewhere changes one balance: that household comes again, with its new balance.
    r = online_sale(client, county.clerk_other, "BSP", county.household.id, [("SOAP", 1)])
    assert r.status_code == 201, r.get_data(as_text=True)
    _pages, _cursor, merged = _drain(client, county.node, idle["cursor"])
    assert merged["households"][county.household.id]["balance"] == 590
    # Its stock at BSP moved, not GJY's: the products the node sees did not change for it.
    assert "SOAP" not in merged["products"] or merged["products"]["SOAP"]["on_hand"] == 500


def test_changes_reach_the_node_card_revoked_price_floor_stock(client, county, factory):
    household = county.household
    card, payload = factory.card(household)
    _pages, cursor, _merged = _drain(client, county.node)
    cards.revoke_card(db.session, actor=factory.admin, now=utcnow(), card_id=card.id, reason="丢失")
    inventory.update_product(
        db.session, actor=factory.admin, now=utcnow(), sku="SOAP", points_price=12
    )
    ledger.update_village(db.session, actor=factory.admin, code="ZJB", redemption_floor=500)
    db.session.commit()
    r = online_sale(
        client, through_node(county, county.clerk_home), "GJY", household.id, [("RICE-10", 1)]
    )
    assert r.status_code == 201
    _pages, cursor, merged = _drain(client, county.node, cursor)
    digest = hashlib.sha256(payload.encode()).hexdigest()
    assert merged["cards"][digest]["active"] is False
    assert merged["products"]["SOAP"]["points_price"] == 12
    assert merged["products"]["RICE-10"]["on_hand"] == 99
    h = merged["households"][household.id]
    assert (h["balance"], h["floor"], h["allowance"]) == (530, 500, 30)


def test_a_household_joining_the_node_comes_with_its_village(client, county, factory):
    plain = factory.village("QTP", name="青树坪村", floor=0)
    newcomer = factory.household(plain, balance=80)
    _pages, cursor, merged = _drain(client, county.node)
    assert newcomer.id not in merged["households"]
    ledger.update_village(db.session, actor=factory.admin, code="QTP", shop_code="GJY")
    db.session.commit()
    _pages, _cursor, merged = _drain(client, county.node, cursor)
    assert merged["households"][newcomer.id]["allowance"] == 80


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "",
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(b'{"v":1,"n":1,"full":false,"a":-1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"n":999,"full":true,"a":0}').decode(),
        "x" * 3000,
    ],
)
def test_a_bad_cursor_gives_a_full_sync_never_a_500(client, county, cursor):
    page = _pull(client, county.node, cursor)
    assert page["full"] is True
    assert [h["id"] for h in page["households"]] == [county.household.id]


def test_bad_queries_and_other_roles_are_refused(client, county, factory):
    for query in ({"limit": "0"}, {"limit": "5001"}, {"limit": "x"}, {"cursor": "x" * 5000}):
        r = client.get("/api/v1/node/feed", query_string=query, headers=county.node.headers)
        assert_problem(r, 422, "validation_error")
    assert_problem(
        client.get("/api/v1/node/feed", headers=factory.headers(factory.admin)), 403, "forbidden"
    )
    stray = factory.headers(factory.user(Role.SHOP_NODE, shop="GJY"))
    assert_problem(client.get("/api/v1/node/feed", headers=stray), 403, "forbidden")
    assert_problem(client.get("/api/v1/node/feed"), 401, "unauthenticated")


def test_an_idle_call_is_cheap(client, county):
    _pages, cursor, _merged = _drain(client, county.node)
    _pull(client, county.node, cursor)
    timings = []
    for _ in range(11):
        started = time.perf_counter()
        _pull(client, county.node, cursor)
        timings.append(time.perf_counter() - started)
    # The median, whole HTTP round trip included: a busy test machine may stall one call.
    assert sorted(timings)[5] < 0.05


def test_a_late_commit_behind_the_cursor_is_sent_again(client, county):
    from datetime import timedelta

    from nodes.services.feed import decode_cursor, encode_cursor

    _pages, cursor, _merged = _drain(client, county.node)
    state = decode_cursor(cursor, county.node_id)
    # Past the time window of the rows just made: an idle call sends nothing.
    state["f"]["u"] = (utcnow() + timedelta(minutes=1)).isoformat()
    idle = _pull(client, county.node, encode_cursor(state))
    assert idle["households"] == [] and idle["products"] == []
    # As if one transfer behind the marks had not yet committed when the round began.
    state["f"]["w"][0] -= 1
    late = _pull(client, county.node, encode_cursor(state))
    assert [h["id"] for h in late["households"]] == [county.household.id]

"""PUT /api/v1/node/report, and the home shop's reserve spent only through its own node."""

from __future__ import annotations

from datetime import UTC, datetime

from accounts.auth import Role
from core.db import db
from nodes.models import ShopNode
from tests.conftest import assert_problem
from tests.nodes.conftest import balance, online_sale, register, through_node


def test_the_node_reports_what_waits_and_since_when_it_is_offline(client, county):
    body = {
        "pending_sales": 3,
        "offline_since": "2026-12-04T08:00:00+08:00",
        "last_sync_at": "2026-12-04T07:59:00+08:00",
    }
    r = client.put("/api/v1/node/report", json=body, headers=county.node.headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    answer = r.get_json()
    assert answer["pending_sales"] == 3 and answer["shop_code"] == "GJY"
    assert answer["offline_since"] == "2026-12-04T08:00:00+08:00"
    db.session.rollback()
    node = db.session.get(ShopNode, county.node_id)
    assert node.pending_sales == 3 and node.reported_at is not None
    assert node.offline_since == datetime(2026, 12, 4, 0, 0, tzinfo=UTC)
    assert node.last_sync_at == datetime(2026, 12, 3, 23, 59, tzinfo=UTC)
    # Back online: nothing waits; an older last sync does not replace a newer.
    body = {"pending_sales": 0, "offline_since": None, "last_sync_at": "2026-12-01T00:00:00Z"}
    r = client.put("/api/v1/node/report", json=body, headers=county.node.headers)
    assert r.status_code == 200
    db.session.rollback()
    node = db.session.get(ShopNode, county.node_id)
    assert (node.pending_sales, node.offline_since) == (0, None)
    assert node.last_sync_at == datetime(2026, 12, 3, 23, 59, tzinfo=UTC)


def test_bad_reports_are_refused(client, county, factory):
    for body in (
        {},
        {"pending_sales": -1},
        {"pending_sales": "3"},
        {"pending_sales": 1, "offline_since": "yesterday"},
        {"pending_sales": 1, "offline_since": "2026-12-04T08:00:00"},  # no offset
        {"pending_sales": 1, "extra": 1},
    ):
        r = client.put("/api/v1/node/report", json=body, headers=county.node.headers)
        assert_problem(r, 422, "validation_error")
    r = client.put("/api/v1/node/report", data="nope", headers=county.node.headers)
    assert 400 <= r.status_code < 500
    clerk = factory.headers(factory.user(Role.CLERK, shop="GJY"))
    assert_problem(
        client.put("/api/v1/node/report", json={"pending_sales": 0}, headers=clerk),
        403,
        "forbidden",
    )


def test_the_home_shop_straight_to_the_county_is_held_back_like_any_other(client, county):
    household = county.household
    # 600, floor 100, 200 reserved for the node: 300 may go straight to the county.
    r = online_sale(client, county.clerk_home, "GJY", household.id, [("RICE-10", 5)])  # 350
    problem = assert_problem(r, 409, "insufficient_points")
    assert problem["reserved"] == 200
    r = online_sale(client, county.clerk_home, "GJY", household.id, [("SOAP", 30)])  # 300
    assert r.status_code == 201 and balance(household.id) == 300
    # Through the node, the reserve is the home shop's to spend, down to the floor.
    home = through_node(county, county.clerk_home)
    r = online_sale(client, home, "GJY", household.id, [("SOAP", 20)])
    assert r.status_code == 201 and r.get_json()["balance_after"] == 100


def test_only_the_shops_own_node_token_opens_the_reserve(client, county, factory):
    household = county.household
    _node, bsp_token = register(factory, "BSP", "node-bsp")
    stray = factory.user(Role.SHOP_NODE, shop="GJY")
    for token in (bsp_token, factory.token(stray), "not-a-token", ""):
        headers = {**county.clerk_home, "X-Shop-Node-Token": token}
        r = online_sale(client, headers, "GJY", household.id, [("RICE-10", 5)])
        assert_problem(r, 409, "insufficient_points")
    # The node's token at another shop opens nothing there either.
    r = online_sale(
        client, through_node(county, county.clerk_other), "BSP", household.id, [("RICE-10", 5)]
    )
    assert_problem(r, 409, "insufficient_points")
    assert balance(household.id) == 600


def test_the_daily_report_counts_offline_sales_by_their_own_time(client, county, factory):
    from datetime import timedelta

    from core.db import utcnow
    from core.timeutil import business_day, local_tz

    node, household = county.node, county.household
    home = through_node(county, county.clerk_home)
    online = online_sale(client, home, "GJY", household.id, [("SOAP", 1)])
    assert online.status_code == 201
    # Two sales the node made an hour ago reach the county after the online one.
    for minutes in (60, 50):
        body = node.body(household.id, [("SOAP", 2)], made_at=utcnow() - timedelta(minutes=minutes))
        r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
        assert r.status_code == 201, r.get_data(as_text=True)
        node.accepted(body)
    manager = factory.headers(factory.user(Role.MANAGER, shop="GJY"))
    today = business_day(utcnow(), local_tz())
    r = client.get(
        "/api/v1/shops/GJY/reports/daily", query_string={"date": today.isoformat()}, headers=manager
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    report = r.get_json()
    if business_day(utcnow() - timedelta(minutes=60), local_tz()) == today:
        assert (report["sales"], report["offline_sales"]) == (3, 2)
        assert report["points_redeemed"] == 50
    assert report["matches_ledger"] is True
    # The history runs by the time of sale, newest first: the online sale, then the node's.
    r = client.get("/api/v1/shops/GJY/sales", headers=manager)
    receipts = [sale["receipt_no"] for sale in r.get_json()["sales"]]
    assert receipts[0] == online.get_json()["receipt_no"]
    assert receipts[1:] == sorted(receipts[1:], reverse=True)

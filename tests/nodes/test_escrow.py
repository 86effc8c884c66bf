"""The escrow: other shops and online sales spend only what lies beyond the node's allowance."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from accounts.auth import Role
from core.db import db
from core.errors import InsufficientPoints
from ledger import services as ledger
from ledger.models import Transfer, TransferKind
from nodes.models import NodeSale
from pos.models import Sale
from tests.conftest import assert_problem
from tests.helpers.threads import run_threads
from tests.nodes.conftest import balance, online_sale, through_node


def test_another_shop_is_refused_beyond_the_reservation_in_chinese(client, county):
    household = county.household
    # 600 - floor 100 - allowance 200 = 300 for every other counter.
    r = online_sale(client, county.clerk_other, "BSP", household.id, [("RICE-10", 4)])
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["balance_after"] == 320
    r = online_sale(client, county.clerk_other, "BSP", household.id, [("SOAP", 3)])
    problem = assert_problem(r, 409, "insufficient_points")
    assert "200 积分留作高家堰超市断网时使用" in problem["detail"], problem["detail"]
    assert (problem["reserved"], problem["available"]) == (200, 20)
    assert balance(household.id) == 320
    # What lies beyond it still goes.
    r = online_sale(client, county.clerk_other, "BSP", household.id, [("SOAP", 2)])
    assert r.status_code == 201 and r.get_json()["balance_after"] == 300


def test_the_english_detail_names_the_reservation_too(client, county):
    household = county.household
    r = client.post(
        "/api/v1/shops/BSP/sales?lang=en",
        json={
            "household_id": household.id,
            "lines": [{"sku": "RICE-10", "qty": 6}],
            "idempotency_key": "en-escrow",
        },
        headers={**county.clerk_other, "Accept-Language": "en"},
    )
    problem = assert_problem(r, 409, "insufficient_points")
    assert problem["reserved"] == 200


def test_the_home_shop_online_spends_its_own_reserve_down_to_the_floor(client, county):
    # The reserve is the home shop's: a household with little above its floor still buys
    # there, through its node, while the line is up. The node learns the smaller allowance
    # from the answer.
    household = county.household
    home = through_node(county, county.clerk_home)
    r = online_sale(client, home, "GJY", household.id, [("RICE-10", 7)])  # 490
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["balance_after"] == 110
    r = online_sale(client, home, "GJY", household.id, [("SOAP", 11)])
    problem = assert_problem(r, 409, "insufficient_points")
    assert problem.get("reserved", 0) == 0 and "留作" not in problem["detail"]
    # Another shop now has nothing: the 10 left are the node's.
    r = online_sale(client, county.clerk_other, "BSP", household.id, [("SOAP", 1)])
    assert assert_problem(r, 409, "insufficient_points")["reserved"] == 10


def test_the_counter_shows_the_reserve_only_away_from_home(client, county, factory):
    payload = factory.card(county.household)[1]
    db.session.commit()
    for shop, headers, spendable, reserved in (
        ("GJY", through_node(county, county.clerk_home), 500, 0),
        # Straight to the county, even at the home shop: the node may be selling it.
        ("GJY", county.clerk_home, 300, 200),
        ("BSP", county.clerk_other, 300, 200),
    ):
        r = client.post(
            f"/api/v1/shops/{shop}/customer", json={"card_payload": payload}, headers=headers
        )
        assert r.status_code == 200, r.get_data(as_text=True)
        got = r.get_json()
        assert (got["spendable"], got["reserved"]) == (spendable, reserved), (shop, got)


def test_the_node_spends_the_reservation_down_to_the_floor(client, county):
    household, node = county.household, county.node
    r = online_sale(client, county.clerk_other, "BSP", household.id, [("SOAP", 30)])  # 300
    assert r.status_code == 201 and r.get_json()["balance_after"] == 300
    body = node.body(household.id, [("RICE-10", 2), ("SOAP", 6)])  # 200
    r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    node.accepted(body)
    assert balance(household.id) == 100  # the village's floor, untouched
    # Nothing is left above the floor online; offline, goods that left anyway are taken
    # (flagged, down to zero at most).
    body = node.body(household.id, [("SOAP", 1)])
    r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert r.status_code == 201 and r.get_json()["balance_after"] == 90
    assert db.session.scalar(select(NodeSale.exception).where(NodeSale.seq == 2))
    db.session.rollback()
    r = online_sale(client, county.clerk_other, "BSP", household.id, [("SOAP", 1)])
    assert_problem(r, 409, "insufficient_points")


def test_a_small_balance_is_all_reserved_for_the_node(client, county, factory):
    household = factory.household(county.village, balance=250)  # 150 above the floor
    r = online_sale(client, county.clerk_other, "BSP", household.id, [("SOAP", 1)])
    problem = assert_problem(r, 409, "insufficient_points")
    assert problem["reserved"] == 150 and problem["available"] == 0
    body = county.node.body(household.id, [("SOAP", 15)])
    r = client.post("/api/v1/node/sales", json=body, headers=county.node.headers)
    assert r.status_code == 201 and r.get_json()["balance_after"] == 100


def test_households_of_villages_without_a_node_are_as_before(client, county, factory):
    plain = factory.village("QTP", name="青树坪村", floor=100)
    household = factory.household(plain, balance=600)
    r = online_sale(client, county.clerk_other, "BSP", household.id, [("RICE-10", 7)])  # 490
    assert r.status_code == 201 and r.get_json()["balance_after"] == 110
    # A home shop without a node holds nothing back either.
    ledger.update_village(db.session, actor=factory.admin, code="QTP", shop_code="BSP")
    db.session.commit()
    other = factory.household(plain, balance=600)
    r = online_sale(client, county.clerk_home, "GJY", other.id, [("RICE-10", 7)])
    assert r.status_code == 201 and r.get_json()["balance_after"] == 110
    # A node that sold offline for a village not its shop's is flagged for the office.
    body = county.node.body(other.id, [("SOAP", 1)])
    r = client.post("/api/v1/node/sales", json=body, headers=county.node.headers)
    assert r.status_code == 201
    assert db.session.scalar(select(NodeSale.exception))
    db.session.rollback()


def test_the_allowance_follows_the_setting(client, county, app):
    app.config["OFFLINE_ALLOWANCE_POINTS"] = 0
    r = online_sale(client, county.clerk_other, "BSP", county.household.id, [("RICE-10", 7)])
    assert r.status_code == 201 and r.get_json()["balance_after"] == 110
    app.config["OFFLINE_ALLOWANCE_POINTS"] = 50
    body = county.node.body(county.household.id, [("SOAP", 1)])
    r = client.post("/api/v1/node/sales", json=body, headers=county.node.headers)
    assert r.status_code == 201  # 10 of the 10 left above the floor


def _post_json(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_online_and_offline_sales_racing_never_pass_the_floor(county, live_server, factory):
    """Many online sales at another shop, and the node's intakes (with retries), at once."""
    household, node = county.household, county.node
    # Offline: 6 sales of 30 points (180 of the 200 allowance), each sent three times.
    bodies = []
    for _ in range(6):
        body = node.body(household.id, [("SOAP", 3)])
        node.accepted(body)
        bodies.append(body)
    clerks = [county.clerk_other] + [
        factory.headers(factory.user(Role.CLERK, shop="BSP")) for _ in range(3)
    ]
    household_id = household.id
    db.session.rollback()
    online_threads, node_threads = 12, 3

    def work(i: int) -> list[tuple[str, int, Any]]:
        if i < online_threads:
            # 70 points each: 12 of them would be 840, far more than the 300 beyond.
            status, answer = _post_json(
                f"{live_server}/api/v1/shops/BSP/sales",
                {
                    "household_id": household_id,
                    "lines": [{"sku": "RICE-10", "qty": 1}],
                    "idempotency_key": f"race-online-{i}",
                },
                clerks[i % len(clerks)],
            )
            return [("online", status, answer)]
        # Each node thread sends the whole outbox in order, as a node retrying would: a
        # sale another thread took first answers again; one not yet its turn is a gap.
        results = []
        for body in bodies:
            for _attempt in range(200):
                status, answer = _post_json(f"{live_server}/api/v1/node/sales", body, node.headers)
                if status == 409 and answer.get("code") == "conflict":
                    continue  # its predecessor is still on its way: try again
                break
            results.append(("offline", status, answer))
        return results

    results = run_threads(online_threads + node_threads, work)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, repr(failed)
    outcomes = [r for rs in results for r in rs]
    statuses = Counter((kind, status) for kind, status, _ in outcomes)
    # Online sales may take the balance down to floor + allowance = 300, no further: at most
    # 4 of 70 (fewer when offline sales posted first also lowered it). The node's sales are
    # within its allowance whatever came first: every one of them is taken.
    online_ok = statuses[("online", 201)]
    assert 1 <= online_ok <= 4, statuses
    assert statuses[("online", 409)] == online_threads - online_ok, statuses
    assert statuses[("offline", 201)] == 6 * node_threads, statuses
    refusals = [a for kind, status, a in outcomes if kind == "online" and status == 409]
    assert {a["code"] for a in refusals} == {"insufficient_points"}
    # Every answer to one offline sale is the same sale.
    by_seq: dict[int, set[int]] = {}
    for kind, _status, answer in outcomes:
        if kind == "offline":
            by_seq.setdefault(answer["seq"], set()).add(answer["sale_id"])
    assert all(len(ids) == 1 for ids in by_seq.values()) and len(by_seq) == 6
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(NodeSale)) == 6
    assert db.session.scalar(select(func.count()).select_from(Sale)) == online_ok + 6
    redeemed = db.session.scalar(
        select(func.sum(Transfer.amount)).where(Transfer.kind == TransferKind.REDEMPTION)
    )
    assert redeemed == online_ok * 70 + 6 * 30
    final = balance(household_id)
    assert final == 600 - redeemed and final >= 100
    report = ledger.verify_ledger(db.session)
    db.session.rollback()
    assert report.ok, report.problems
    assert report.node_sales_checked == 6


@pytest.mark.parametrize(
    ("shop", "mode", "guard", "most"),
    [
        ("BSP", ledger.SpendMode.ONLINE, 300, 300),
        ("BSP", ledger.SpendMode.VIA_NODE, 300, 300),
        ("GJY", ledger.SpendMode.ONLINE, 300, 300),
        ("GJY", ledger.SpendMode.VIA_NODE, 100, 500),
    ],
)
def test_a_held_redemption_says_what_it_would_leave(county, factory, shop, mode, guard, most):
    """The ledger's own API: the hold refuses what the guard would; only the home shop's
    node spends the reserve."""
    clerk = factory.user(Role.CLERK, shop=shop)
    hold = ledger.hold_for_redemption(
        db.session,
        actor=clerk,
        household_id=county.household.id,
        shop_code=shop,
        idempotency_key=f"hold-{shop}",
        allowance_cap=200,
        mode=mode,
    )
    assert (hold.reserved, hold.guard_floor) == (200, guard)
    assert hold.balance_after(most) == 600 - most
    with pytest.raises(InsufficientPoints):
        hold.balance_after(most + 1)
    db.session.rollback()


def test_the_counter_is_told_what_it_may_spend_here(client, county, factory):
    _card, payload = factory.card(county.household)
    r = client.post(
        "/api/v1/shops/BSP/customer", json={"card_payload": payload}, headers=county.clerk_other
    )
    assert r.status_code == 200
    body = r.get_json()
    assert (body["balance"], body["floor"], body["spendable"]) == (600, 100, 300)
    assert (body["reserve_cap"], body["reserved"]) == (200, 200)
    assert body["reserved_for"] == "高家堰超市"
    plain = factory.household(factory.village("QTP", floor=100), balance=600)
    _card, payload = factory.card(plain)
    r = client.post(
        "/api/v1/shops/BSP/customer", json={"card_payload": payload}, headers=county.clerk_other
    )
    assert (r.get_json()["spendable"], r.get_json()["reserved"]) == (500, 0)


def test_the_database_guard_holds_the_reserve_even_when_the_check_is_fooled(county, factory):
    """The reserve is in the UPDATE's WHERE, not only in Python: a hold that believes the
    balance is larger still cannot take the household into the reserve."""
    import dataclasses

    from core.db import utcnow
    from core.errors import Conflict

    clerk = factory.user(Role.CLERK, shop="BSP")
    hold = ledger.hold_for_redemption(
        db.session,
        actor=clerk,
        household_id=county.household.id,
        shop_code="BSP",
        idempotency_key="fooled",
        allowance_cap=200,
    )
    fooled = dataclasses.replace(hold, target=dataclasses.replace(hold.target, balance=10_000))
    with pytest.raises(Conflict):
        ledger.post_redemption(db.session, fooled, actor=clerk, now=utcnow(), points=301)
    db.session.rollback()
    assert balance(county.household.id) == 600

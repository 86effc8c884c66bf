"""Selling through a cut line with real processes: the county, a TCP proxy, a shop node.

Issue 14's scenarios (API.md "Shop node", DESIGN.md "Offline selling"): the allowance,
revoked cards, households of other shops, online spending elsewhere meanwhile, kill -9 of
the node with unsynced sales and in the middle of a sync, clock skew, and on restore
every offline sale at the county exactly once with balances, ledger and stock exact.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.nodes.e2e.conftest import FLOOR, GOODS, World, build_world, now_iso, start_world
from tests.nodes.e2e.processes import NODE_CLOCK_SKEW_ENV, County, wait_until

PRICE = GOODS


def _offline(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body = response.json()
    assert body.get("offline") is True, body
    return dict(body)


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return dict(body)


def _assert_exactly_once(world: World, answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each offline answer is one sale at the county, same receipt, household and total."""
    sales = world.county_sales()
    by_receipt = Counter(sale["receipt_no"] for sale in sales)
    doubled = {no: n for no, n in by_receipt.items() if n > 1}
    assert not doubled, f"sales doubled at the county: {doubled}"
    found = {sale["receipt_no"]: sale for sale in sales}
    for answer in answers:
        sale = found.get(answer["receipt_no"])
        assert sale is not None, f"offline sale {answer['receipt_no']} never reached the county"
        assert sale["household_id"] == answer["household_id"]
        assert sale["total_points"] == answer["total_points"]
        assert sale.get("offline") is True, sale
    return sales


def _drained(world: World) -> dict[str, Any]:
    return world.node.wait_synced()


def test_status_online_then_offline_then_drained(world: World) -> None:
    status = world.node.status()
    assert status["online"] is True
    assert status["offline_since"] is None
    assert status["pending_sales"] == 0
    # rich and modest and revoked are V's; stranger is W's (another home shop).
    assert status["allowance_households"] == 3

    world.proxy.cut()
    sold = _offline(world.sell_at_node("rich", {"E2E-OIL": 1}))
    status = world.node.wait_status("offline", lambda s: not s["online"])
    assert status["offline_since"]
    assert status["pending_sales"] == 1

    world.proxy.restore()
    status = _drained(world)
    assert status["offline_since"] is None
    _assert_exactly_once(world, [sold])


@pytest.mark.e2e_core
def test_within_and_beyond_the_allowance_then_exactly_once(world: World) -> None:
    before = world.stock()
    world.proxy.cut()
    answers = [
        _offline(world.sell_at_node("rich", {"E2E-RICE": 2})),  # 140
        _offline(world.sell_at_node("rich", {"E2E-OIL": 2}, by_card=True)),  # 200: the cap
        _offline(world.sell_at_node("modest", {"E2E-OIL": 3})),  # 90 of its 100
    ]
    assert answers[1]["balance_after"] == 300
    # Beyond the allowance, by household or by card: refused, and it says so.
    beyond = _refused(world.sell_at_node("rich", {"E2E-SALT": 1}), 409, "insufficient_points")
    assert beyond["detail"]
    _refused(world.sell_at_node("modest", {"E2E-OIL": 1}), 409, "insufficient_points")
    # The receipt numbers are the node's own gapless series.
    numbers = [a["receipt_no"] for a in answers]
    assert len(set(numbers)) == 3
    assert all("-L" in no for no in numbers), numbers
    assert [int(no.rsplit("L", 1)[1]) for no in numbers] == sorted(
        int(no.rsplit("L", 1)[1]) for no in numbers
    )
    world.proxy.restore()
    _drained(world)
    sales = _assert_exactly_once(world, answers)
    assert len(sales) == 3
    assert world.balance("rich") == 500 - 200
    assert world.balance("modest") == 150 - 90
    after = world.stock()
    assert after["E2E-RICE"] == before["E2E-RICE"] - 2
    assert after["E2E-OIL"] == before["E2E-OIL"] - 5
    redemptions = [e for e in world.statement("rich") if e["kind"] == "redemption"]
    assert sorted(e["points"] for e in redemptions) == [-140, -60]
    world.assert_county_consistent()


def test_offline_key_replays_the_same_sale_before_and_after_sync(world: World) -> None:
    world.proxy.cut()
    body = world.sale_body("modest", {"E2E-SALT": 4})
    path = f"/api/v1/shops/{world.home_shop}/sales"
    first = _offline(world.at_node().post(path, body))
    again = world.at_node().post(path, body)
    assert again.status_code == 201
    assert again.json() == first
    # The same key with another body is a conflict, offline as online.
    other = dict(body, lines=[{"sku": "E2E-SALT", "qty": 5}])
    _refused(world.at_node().post(path, other), 409, "idempotency_conflict")

    world.proxy.restore()
    _drained(world)
    after = world.at_node().post(path, body)
    assert after.status_code == 201, after.text
    assert after.json()["receipt_no"] == first["receipt_no"]
    assert after.json()["total_points"] == first["total_points"]
    assert after.json()["household_id"] == first["household_id"]
    _assert_exactly_once(world, [first])
    assert len(world.county_sales()) == 1
    assert world.balance("modest") == 150 - 12


def test_card_revoked_before_the_cut_is_refused_offline(world: World) -> None:
    card = world.cards["revoked"]
    moment = now_iso()
    world.admin.ok("POST", f"/api/v1/cards/{card['card_id']}/revoke", {"reason": "丢失"})
    world.node.wait_sync_after(moment)
    world.proxy.cut()
    _refused(world.sell_at_node("revoked", {"E2E-SALT": 1}, by_card=True), 410, "card_revoked")
    # A good card still sells. A forged one is in no synced list: refused (the node cannot
    # check signatures, so it may take it for another village's card), and so is the card
    # of a household of another home shop.
    _offline(world.sell_at_node("rich", {"E2E-SALT": 1}, by_card=True))
    forged = world.sale_body("rich", {"E2E-SALT": 1}, by_card=True)
    forged["card_payload"] = forged["card_payload"][:-3] + "AAA"
    response = world.at_node().post(f"/api/v1/shops/{world.home_shop}/sales", forged)
    assert response.status_code in (404, 409, 410, 422), response.text
    _refused(
        world.sell_at_node("stranger", {"E2E-SALT": 1}, by_card=True), 409, "insufficient_points"
    )
    world.proxy.restore()
    _drained(world)
    assert world.balance("revoked") == 300
    assert world.balance("rich") == 500 - PRICE["E2E-SALT"]
    assert len(world.county_sales()) == 1


def test_household_of_another_shop_is_refused_offline(world: World) -> None:
    # Online, the node passes the sale to the county, which sells to anyone's household.
    online = world.sell_at_node("stranger", {"E2E-SALT": 1})
    assert online.status_code == 201, online.text
    assert not online.json().get("offline")
    world.proxy.cut()
    refused = _refused(world.sell_at_node("stranger", {"E2E-SALT": 1}), 409, "insufficient_points")
    assert refused["detail"]
    world.proxy.restore()
    _drained(world)
    assert world.balance("stranger") == 300 - PRICE["E2E-SALT"]
    assert len(world.county_sales()) == 1


@pytest.mark.e2e_core
def test_spending_online_elsewhere_meanwhile_never_passes_the_floor(world: World) -> None:
    world.proxy.cut()
    offline = [
        _offline(world.sell_at_node("rich", {"E2E-RICE": 1})),
        _offline(world.sell_at_node("rich", {"E2E-RICE": 1, "E2E-OIL": 2})),
    ]
    # Meanwhile at the other shop, straight at the county: only what lies beyond the
    # home shop's reserve (200) and the floor (50) may go: 500 - 200 - 50 = 250.
    sales = f"/api/v1/shops/{world.other_shop}/sales"
    too_much = world.admin.post(sales, world.sale_body("rich", {"E2E-RICE": 3, "E2E-OIL": 2}))
    assert too_much.status_code == 409, too_much.text  # 270
    online = world.admin.ok("POST", sales, world.sale_body("rich", {"E2E-RICE": 3, "E2E-OIL": 1}))
    assert online["total_points"] == 240
    world.proxy.restore()
    _drained(world)
    _assert_exactly_once(world, offline)
    assert world.balance("rich") == 500 - 200 - 240
    assert world.balance("rich") >= FLOOR
    world.assert_county_consistent()


@pytest.mark.e2e_core
def test_kill9_with_unsynced_sales_loses_none(world: World) -> None:
    world.proxy.cut()
    answers = [_offline(world.sell_at_node("rich", {"E2E-SALT": n})) for n in (1, 2, 3)]
    world.node.kill9()
    world.node.start()  # same state dir, line still cut
    status = world.node.status()
    assert status["online"] is False
    assert status["pending_sales"] == 3
    # The clerk's token, seen online before the cut, still works after the restart.
    answers.append(_offline(world.sell_at_node("rich", {"E2E-SALT": 4})))
    numbers = [a["receipt_no"] for a in answers]
    assert len(set(numbers)) == 4
    world.proxy.restore()
    _drained(world)
    _assert_exactly_once(world, answers)
    assert len(world.county_sales()) == 4
    assert world.balance("rich") == 500 - 3 * 10
    world.assert_county_consistent()


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("drop_answers", marks=pytest.mark.e2e_core),
        pytest.param("blackhole", marks=pytest.mark.e2e_full),
    ],
)
def test_kill9_in_the_middle_of_a_sync_doubles_none(world: World, line: str) -> None:
    world.proxy.cut()
    answers = [_offline(world.sell_at_node("modest", {"E2E-SALT": 1})) for _ in range(5)]
    # The line comes back half-way: requests go out, no answer comes back (drop_answers:
    # the county has taken the sale), or nothing goes through at all (blackhole).
    getattr(world.proxy, line)()
    world.proxy.reset_counters()
    wait_until(lambda: world.proxy.bytes_up > 0, what="the node to try to sync")
    if line == "drop_answers":
        # The dangerous case indeed: the county took a sale whose answer the node never saw.
        wait_until(lambda: world.county_sales(), what="the county to take the first sale")
    world.node.kill9()
    world.proxy.restore()
    world.node.start()
    _drained(world)
    _assert_exactly_once(world, answers)
    assert len(world.county_sales()) == 5
    assert world.balance("modest") == 150 - 15
    world.assert_county_consistent()


@pytest.mark.e2e_full
def test_node_restarted_while_online_keeps_selling_through(world: World) -> None:
    world.node.kill9()
    world.node.start()
    _drained(world)
    sold = world.sell_at_node("rich", {"E2E-SALT": 1})
    assert sold.status_code == 201, sold.text
    assert not sold.json().get("offline")
    assert world.balance("rich") == 500 - 3


@pytest.mark.e2e_full
@pytest.mark.parametrize("skew_minutes", [+7, -7])
def test_node_clock_skew_does_not_move_sales_in_time(
    county: County, tmp_path: Path, skew_minutes: int
) -> None:
    world = build_world(county, tmp_path, node_env={NODE_CLOCK_SKEW_ENV: str(skew_minutes * 60)})
    try:
        start_world(world)
        world.proxy.cut()
        before = datetime.now(UTC)
        answer = _offline(world.sell_at_node("rich", {"E2E-OIL": 1}))
        after = datetime.now(UTC)
        world.proxy.restore()
        _drained(world)
        (sale,) = _assert_exactly_once(world, [answer])
        made = datetime.fromisoformat(sale["created_at"])
        # The node corrects its clock by the county's `now`: the sale keeps the real time.
        slack = timedelta(seconds=30)
        assert before - slack <= made <= after + slack, (made, before, after)
        assert world.balance("rich") == 500 - 30
        world.assert_county_consistent()
    finally:
        world.node.stop()
        world.proxy.close()

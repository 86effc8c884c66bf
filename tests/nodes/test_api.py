"""POST /api/v1/node/sales: offline sales reach the county in order, once, chained."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from accounts.auth import Role
from core.db import db
from nodes.models import NodeSale, ShopNode
from pos.models import Sale
from tests.conftest import assert_problem
from tests.nodes.conftest import balance, register


def _count(model) -> int:
    db.session.rollback()
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_offline_sale_is_recorded_with_its_own_number_time_and_link(client, county):
    node, household = county.node, county.household
    body = node.body(household.id, [("RICE-10", 2)])
    r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    expected_hash = node.accepted(body)
    answer = r.get_json()
    assert answer["offline"] is True
    assert answer["receipt_no"] == "GJY-20261203-L0001"
    assert (answer["total_points"], answer["balance_after"]) == (140, 460)
    assert (answer["seq"], answer["hash"]) == (1, expected_hash)
    assert balance(household.id) == 460
    sale = db.session.get(Sale, answer["sale_id"])
    assert sale.offline and sale.shop_code == "GJY"
    assert sale.created_at.isoformat() == "2026-12-03T09:31:00+00:00"
    state = db.session.get(ShopNode, county.node_id)
    assert (state.last_seq, state.last_hash) == (1, expected_hash)
    assert state.last_sync_at is not None
    # The next one follows on.
    body = node.body(household.id, [("SOAP", 1)])
    r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert r.status_code == 201 and r.get_json()["seq"] == 2
    node.accepted(body)
    r = client.get("/api/v1/node", headers=node.headers)
    assert r.status_code == 200
    assert r.get_json()["last_seq"] == 2 and r.get_json()["last_hash"] == node.head
    assert r.get_json()["shop_code"] == "GJY"


def test_a_retry_answers_the_same_sale_and_charges_once(client, county):
    node, household = county.node, county.household
    body = node.body(household.id, [("RICE-10", 1)])
    first = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert first.status_code == 201
    node.accepted(body)
    again = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert again.status_code == first.status_code
    assert again.get_json() == first.get_json()
    assert _count(Sale) == 1 and _count(NodeSale) == 1
    assert balance(household.id) == 530
    # Still a retry after later sales moved the head on.
    later = node.body(household.id, [("SOAP", 1)])
    assert client.post("/api/v1/node/sales", json=later, headers=node.headers).status_code == 201
    node.accepted(later)
    assert client.post("/api/v1/node/sales", json=body, headers=node.headers).get_json() == (
        first.get_json()
    )
    assert balance(household.id) == 520


def test_a_used_key_or_seq_with_another_body_is_an_idempotency_conflict(client, county):
    node, household = county.node, county.household
    body = node.body(household.id, [("RICE-10", 1)])
    assert client.post("/api/v1/node/sales", json=body, headers=node.headers).status_code == 201
    node.accepted(body)
    changed = {**body, "lines": [{"sku": "RICE-10", "qty": 2}]}
    assert_problem(
        client.post("/api/v1/node/sales", json=changed, headers=node.headers),
        409,
        "idempotency_conflict",
    )
    # The same key on the next seq: a different request under a used key.
    reused = node.body(household.id, [("SOAP", 1)], key=body["idempotency_key"])
    assert_problem(
        client.post("/api/v1/node/sales", json=reused, headers=node.headers),
        409,
        "idempotency_conflict",
    )
    # Seq 1 again under a new key.
    same_seq = node.body(household.id, [("SOAP", 1)], seq=1, prev_hash="0" * 64)
    assert_problem(
        client.post("/api/v1/node/sales", json=same_seq, headers=node.headers),
        409,
        "idempotency_conflict",
    )
    assert _count(Sale) == 1 and balance(household.id) == 530


def test_a_gap_or_a_broken_chain_is_refused_and_records_nothing(client, county):
    node, household = county.node, county.household
    gap = node.body(household.id, [("RICE-10", 1)], seq=2)
    problem = assert_problem(
        client.post("/api/v1/node/sales", json=gap, headers=node.headers), 409, "conflict"
    )
    assert problem["expected_seq"] == 1
    assert "1" in problem["detail"]
    broken = node.body(household.id, [("RICE-10", 1)], prev_hash="f" * 64)
    problem = assert_problem(
        client.post("/api/v1/node/sales", json=broken, headers=node.headers), 409, "conflict"
    )
    assert problem["expected_prev_hash"] == "0" * 64
    assert _count(Sale) == 0 and _count(NodeSale) == 0
    state = db.session.get(ShopNode, county.node_id)
    assert state.last_seq == 0
    assert balance(household.id) == 600


def test_beyond_the_allowance_is_taken_but_flagged_for_the_office(client, county):
    node, household = county.node, county.household
    # The allowance itself may be spent, in one sale or several: no exception.
    ok = node.body(household.id, [("RICE-10", 2), ("SOAP", 6)])  # 200 points
    r = client.post("/api/v1/node/sales", json=ok, headers=node.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    node.accepted(ok)
    assert r.get_json()["balance_after"] == 400
    assert db.session.scalar(select(NodeSale.exception)) is None
    db.session.rollback()
    # Beyond it (a node that should not have sold it): the goods have left, so the county
    # takes it, down to zero at most, and flags it.
    body = node.body(household.id, [("RICE-10", 3)])  # 210 points
    r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["balance_after"] == 190
    flagged = db.session.scalar(select(NodeSale).where(NodeSale.seq == 2))
    assert flagged.exception and flagged.shortfall_points == 0
    assert db.session.get(ShopNode, county.node_id).last_seq == 2


def test_only_the_shops_own_node_posts(client, county, factory):
    node, household = county.node, county.household
    body = node.body(household.id, [("RICE-10", 1)])
    _other_node, token = register(factory, "BSP", "node-bsp")
    other = {"Authorization": f"Bearer {token}"}
    assert_problem(
        client.post("/api/v1/node/sales", json={**body, "shop_code": "GJY"}, headers=other),
        403,
        "forbidden",
    )
    # Its own shop, but the household's home shop is GJY: not its allowance to spend; the
    # goods have left all the same, so it is taken and flagged.
    theirs = {**body, "receipt_no": "BSP-20261203-L0001"}
    r = client.post("/api/v1/node/sales", json=theirs, headers=other)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert "高家堰" not in (db.session.scalar(select(NodeSale.exception)) or "x")
    assert db.session.scalar(select(NodeSale.exception))
    db.session.rollback()
    for role, shop in ((Role.CLERK, "GJY"), (Role.MANAGER, "GJY"), (Role.PRINT_AGENT, "GJY")):
        headers = factory.headers(factory.user(role, shop=shop))
        assert_problem(
            client.post("/api/v1/node/sales", json=body, headers=headers), 403, "forbidden"
        )
    assert_problem(
        client.post("/api/v1/node/sales", json=body, headers=factory.headers(factory.admin)),
        403,
        "forbidden",
    )
    assert_problem(client.post("/api/v1/node/sales", json=body), 401, "unauthenticated")
    # A shop_node user that is not a registered node.
    stray = factory.headers(factory.user(Role.SHOP_NODE, shop="GJY"))
    assert_problem(client.post("/api/v1/node/sales", json=body, headers=stray), 403, "forbidden")
    assert _count(Sale) == 1


def test_a_node_never_sells_online(client, county):
    r = client.post(
        "/api/v1/shops/GJY/sales",
        json={
            "household_id": county.household.id,
            "lines": [{"sku": "RICE-10", "qty": 1}],
            "idempotency_key": "node-online",
        },
        headers=county.node.headers,
    )
    assert_problem(r, 403, "forbidden")


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 0},
        {"seq": "1"},
        {"seq": True},
        {"seq": 2**40},
        {"prev_hash": "xyz"},
        {"prev_hash": None},
        {"idempotency_key": ""},
        {"idempotency_key": "k" * 101},
        {"receipt_no": "GJY-20261203-0001"},  # the county's own series
        {"receipt_no": "BSP-20261203-L0001"},
        {"receipt_no": ""},
        {"made_at": "2026-12-03T09:30:00"},  # no offset
        {"made_at": "0001-01-01T00:00:00+14:00"},
        {"made_at": "yesterday"},
        {"household_id": 0},
        {"household_id": 2**63},
        {"household_id": "1"},
        {"lines": []},
        {"lines": [{"sku": "RICE-10"}]},
        {"lines": [{"sku": "RICE-10", "qty": 0}]},
        {"lines": [{"sku": "", "qty": 1}]},
        {"lines": [{"sku": "RICE-10", "qty": 1, "points": 1}]},
        {"lines": "RICE-10"},
        {"card_digest": "x" * 129},
        {"extra": 1},
        {"receipt_no": "GJY-20261203-L\u00000001"},
    ],
)
def test_malformed_bodies_are_problems_never_500(client, county, change):
    body = {**county.node.body(county.household.id, [("RICE-10", 1)]), **change}
    r = client.post("/api/v1/node/sales", json=body, headers=county.node.headers)
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)
    assert_problem(r, r.status_code)
    assert _count(Sale) == 0


def test_not_json_and_unknown_things_are_problems(client, county):
    node = county.node
    r = client.post("/api/v1/node/sales", data="not json", headers=node.headers)
    assert_problem(r, r.status_code)
    assert 400 <= r.status_code < 500
    unknown_household = node.body(999_999, [("RICE-10", 1)])
    assert_problem(
        client.post("/api/v1/node/sales", json=unknown_household, headers=node.headers),
        404,
        "not_found",
    )
    assert _count(Sale) == 0 and db.session.get(ShopNode, county.node_id).last_seq == 0
    # A product the county never knew: nothing to record but the link and the exception.
    unknown_product = node.body(county.household.id, [("NOPE", 1)])
    r = client.post("/api/v1/node/sales", json=unknown_product, headers=node.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["sale_id"] is None and r.get_json()["total_points"] == 0
    assert _count(Sale) == 0 and db.session.get(ShopNode, county.node_id).last_seq == 1
    assert "NOPE" in db.session.scalar(select(NodeSale.exception))


def test_a_taken_receipt_number_is_a_conflict(client, county):
    node, household = county.node, county.household
    first = node.body(household.id, [("SOAP", 1)])
    assert client.post("/api/v1/node/sales", json=first, headers=node.headers).status_code == 201
    node.accepted(first)
    clash = node.body(household.id, [("SOAP", 1)], receipt_no=first["receipt_no"])
    assert_problem(client.post("/api/v1/node/sales", json=clash, headers=node.headers), 409)
    assert _count(Sale) == 1


def test_offline_sales_leave_the_stock_even_below_zero(client, county, factory):
    from core.db import utcnow
    from inventory import services as inventory
    from inventory.models import Product, StockLevel

    node, household = county.node, county.household
    inventory.adjust_stock(
        db.session,
        actor=factory.admin,
        now=utcnow(),
        shop_code="GJY",
        lines=[("SOAP", -495, "damaged")],
        idempotency_key="adjust-soap",
    )
    db.session.commit()
    # The goods left the shelf long ago: the county's count was wrong, not the sale.
    body = node.body(household.id, [("SOAP", 10)])
    r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    db.session.rollback()
    level = db.session.scalar(
        select(StockLevel.on_hand)
        .join(Product, Product.id == StockLevel.product_id)
        .where(Product.sku == "SOAP", StockLevel.shop_id == county.node_shop_id)
    )
    assert level == -5

"""Offline sales the county cannot honour as sold: taken all the same, recorded, flagged."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from core.db import db, utcnow
from inventory import services as inventory
from ledger import services as ledger
from ledger.models import Transfer
from member_cards import services as cards
from nodes.models import NodeSale, ShopNode
from pos.models import Sale
from tests.conftest import assert_problem
from tests.nodes.conftest import balance


def _penalty(factory, household_id: int, points: int) -> None:
    ledger.post_award(
        db.session,
        actor=factory.admin,
        now=utcnow(),
        household_id=household_id,
        idempotency_key=f"penalty-{uuid.uuid4().hex}",
        points=-points,
        reason="乱扔垃圾",
    )
    db.session.commit()


def _post(client, node, body):
    r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    node.accepted(body)
    return r.get_json()


def _node_sale(seq: int) -> NodeSale:
    db.session.rollback()
    found = db.session.scalar(select(NodeSale).where(NodeSale.seq == seq))
    assert found is not None
    return found


def test_a_penalty_that_took_the_reserve_leaves_the_sale_charged_down_to_zero(
    client, county, factory
):
    node, household = county.node, county.household
    body = node.body(household.id, [("RICE-10", 2), ("SOAP", 6)])  # 200: the allowance
    _penalty(factory, household.id, 450)  # 150 left, 50 above the floor
    answer = _post(client, node, body)
    assert (answer["total_points"], answer["balance_after"]) == (150, 0)
    assert balance(household.id) == 0
    found = _node_sale(1)
    assert found.shortfall_points == 50 and found.total_points == 150
    assert "50" in found.exception
    # The chain went on: the next sale follows.
    answer = _post(client, node, node.body(household.id, [("SOAP", 1)]))
    assert answer["balance_after"] == 0 and _node_sale(2).shortfall_points == 10
    from nodes import services as nodes

    assert nodes.verify_node_chains(db.session).ok


def test_a_household_below_zero_pays_nothing_more_and_owes_the_shortfall(client, county, factory):
    node, household = county.node, county.household
    _penalty(factory, household.id, 610)  # -10
    transfers = db.session.scalar(select(func.count()).select_from(Transfer))
    answer = _post(client, node, node.body(household.id, [("RICE-10", 1)]))
    assert (answer["total_points"], answer["balance_after"]) == (0, -10)
    assert balance(household.id) == -10
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Transfer)) == transfers
    assert _node_sale(1).shortfall_points == 70
    # The day still matches the ledger.
    manager = factory.user("manager", shop="GJY")
    r = client.get(
        "/api/v1/shops/GJY/reports/daily",
        query_string={"date": "2026-12-03"},
        headers=factory.headers(manager),
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["matches_ledger"] is True


def test_goods_the_county_no_longer_sells_are_sold_offline_and_flagged(client, county, factory):
    node, household = county.node, county.household
    inventory.update_product(
        db.session, actor=factory.admin, now=utcnow(), sku="SOAP", active=False
    )
    db.session.commit()
    answer = _post(client, node, node.body(household.id, [("SOAP", 2)]))
    assert answer["total_points"] == 20 and answer["balance_after"] == 580
    assert "SOAP" in _node_sale(1).exception


def test_an_online_sale_under_the_same_key_is_the_same_sale(client, county):
    node, household = county.node, county.household
    key = f"lost-{uuid.uuid4().hex}"
    # The node passed it through online; the answer was lost; the clerk sold it offline.
    online = client.post(
        "/api/v1/shops/GJY/sales",
        json={
            "household_id": household.id,
            "lines": [{"sku": "RICE-10", "qty": 1}, {"sku": "SOAP", "qty": 2}],
            "idempotency_key": key,
        },
        headers=county.clerk_home,
    )
    assert online.status_code == 201
    body = node.body(household.id, [("SOAP", 1), ("RICE-10", 1), ("soap", 1)], key=key)
    answer = _post(client, node, body)
    assert answer["sale_id"] == online.get_json()["sale_id"]
    assert answer["total_points"] == 90 and balance(household.id) == 510
    linked = _node_sale(1)
    assert linked.sale_id == online.get_json()["sale_id"] and linked.exception is None
    assert db.session.get(ShopNode, county.node_id).last_seq == 1
    # A retry of the offline sale answers it again, still charged once.
    again = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert again.status_code == 201 and again.get_json()["sale_id"] == answer["sale_id"]
    assert balance(household.id) == 510
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 1


def test_an_online_sale_under_the_same_key_with_other_goods_is_a_conflict(client, county):
    node, household = county.node, county.household
    key = f"lost-{uuid.uuid4().hex}"
    online = client.post(
        "/api/v1/shops/GJY/sales",
        json={
            "household_id": household.id,
            "lines": [{"sku": "SOAP", "qty": 2}],
            "idempotency_key": key,
        },
        headers=county.clerk_home,
    )
    assert online.status_code == 201
    for lines in ([("SOAP", 3)], [("RICE-10", 2)]):
        body = node.body(household.id, lines, key=key)
        assert_problem(
            client.post("/api/v1/node/sales", json=body, headers=node.headers),
            409,
            "idempotency_conflict",
        )
    # Another shop's online sale under that key is another sale too.
    assert db.session.get(ShopNode, county.node_id).last_seq == 0
    assert balance(household.id) == 580


def test_a_card_digest_must_be_one_of_the_household_cards(client, county, factory):
    node, household = county.node, county.household
    card, payload = factory.card(household)
    digest = hashlib.sha256(payload.encode()).hexdigest()
    # The card was revoked after the sale: the sale stands, unflagged.
    cards.revoke_card(db.session, actor=factory.admin, now=utcnow(), card_id=card.id, reason="丢失")
    db.session.commit()
    body = {**node.body(household.id, [("SOAP", 1)]), "card_digest": digest}
    _post(client, node, body)
    assert _node_sale(1).exception is None
    # A digest of no card of this household: taken (the goods left), flagged.
    body = {**node.body(household.id, [("SOAP", 1)]), "card_digest": "f" * 64}
    _post(client, node, body)
    assert _node_sale(2).exception


def test_a_time_in_the_county_future_is_clamped_and_kept(client, county):
    node, household = county.node, county.household
    ahead = utcnow() + timedelta(hours=3)
    body = node.body(household.id, [("SOAP", 1)], made_at=ahead)
    _post(client, node, body)
    found = _node_sale(1)
    assert found.original_made_at is not None
    assert abs((found.original_made_at - ahead).total_seconds()) < 1
    assert found.made_at < ahead - timedelta(hours=2)
    assert found.exception
    sale = db.session.get(Sale, found.sale_id)
    assert sale.created_at < ahead - timedelta(hours=2)
    # A little ahead (within 10 minutes) is left as the node said.
    slightly = utcnow() + timedelta(minutes=5)
    _post(client, node, node.body(household.id, [("SOAP", 1)], made_at=slightly))
    assert _node_sale(2).original_made_at is None and _node_sale(2).exception is None


def test_the_chain_of_flagged_sales_still_verifies(client, county, factory):
    from nodes import services as nodes

    node, household = county.node, county.household
    key = f"lost-{uuid.uuid4().hex}"
    online = client.post(
        "/api/v1/shops/GJY/sales",
        json={
            "household_id": household.id,
            "lines": [{"sku": "SOAP", "qty": 1}],
            "idempotency_key": key,
        },
        headers=county.clerk_home,
    )
    assert online.status_code == 201
    _post(client, node, node.body(household.id, [("SOAP", 1)], key=key))  # linked
    _post(client, node, node.body(household.id, [("NOPE", 1)]))  # nothing known
    nothing = node.sent[-1]
    again = client.post("/api/v1/node/sales", json=nothing, headers=node.headers)
    assert again.status_code == 201 and again.get_json()["sale_id"] is None
    ahead = utcnow() + timedelta(hours=1)
    _post(client, node, node.body(household.id, [("SOAP", 1)], made_at=ahead))  # clamped
    _penalty(factory, household.id, 700)
    _post(client, node, node.body(household.id, [("RICE-10", 1)]))  # below zero: shortfall
    db.session.rollback()
    report = nodes.verify_node_chains(db.session)
    assert report.ok, report.problems
    assert report.sales_checked == 4

"""POST /api/v1/node/sales/batch: a drain's many sales, each as its own POST would take it."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from nodes.models import NodeSale, ShopNode
from pos.models import Sale
from tests.conftest import assert_problem
from tests.nodes.conftest import balance


def _count(model) -> int:
    db.session.rollback()
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def _batch(client, county, bodies):
    return client.post(
        "/api/v1/node/sales/batch", json={"sales": bodies}, headers=county.node.headers
    )


def _chained(county, lines_each):
    """Bodies that follow each other, as the node's outbox holds them."""
    node, bodies = county.node, []
    for lines in lines_each:
        body = node.body(county.household.id, lines)
        node.accepted(body)
        bodies.append(body)
    return bodies


def test_a_batch_records_each_sale_in_order_in_one_request(client, county):
    bodies = _chained(county, [[("RICE-10", 1)], [("SOAP", 2)], [("SOAP", 1)]])
    r = _batch(client, county, bodies)
    assert r.status_code == 200, r.get_data(as_text=True)
    answer = r.get_json()
    assert answer["refused"] is None
    assert [s["seq"] for s in answer["sales"]] == [1, 2, 3]
    assert [s["receipt_no"] for s in answer["sales"]] == [b["receipt_no"] for b in bodies]
    assert answer["sales"][-1]["hash"] == county.node.head
    assert balance(county.household.id) == 600 - 70 - 20 - 10
    state = db.session.get(ShopNode, county.node_id)
    assert (state.last_seq, state.last_hash) == (3, county.node.head)


def test_a_batch_sent_again_answers_the_same_and_charges_once(client, county):
    bodies = _chained(county, [[("RICE-10", 1)], [("SOAP", 2)]])
    first = _batch(client, county, bodies)
    again = _batch(client, county, bodies)
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert _count(Sale) == 2 and _count(NodeSale) == 2
    assert balance(county.household.id) == 510


def test_the_first_refused_sale_ends_the_batch_and_the_ones_before_it_stand(client, county):
    bodies = _chained(county, [[("SOAP", 1)], [("SOAP", 1)], [("SOAP", 1)]])
    broken = dict(bodies[1], prev_hash="f" * 64)
    r = _batch(client, county, [bodies[0], broken, bodies[2]])
    assert r.status_code == 200
    answer = r.get_json()
    assert [s["seq"] for s in answer["sales"]] == [1]
    refused = answer["refused"]
    assert (refused["status"], refused["code"]) == (409, "conflict")
    assert refused["expected_prev_hash"] == bodies[1]["prev_hash"]
    assert _count(NodeSale) == 1 and balance(county.household.id) == 590
    # The node sends the rest again, right this time.
    r = _batch(client, county, bodies)
    assert [s["seq"] for s in r.get_json()["sales"]] == [1, 2, 3]
    assert _count(NodeSale) == 3 and balance(county.household.id) == 570


def test_a_batch_is_one_to_a_hundred_sales_of_the_nodes_own(client, county):
    assert_problem(_batch(client, county, []), 422, "validation_error")
    bodies = _chained(county, [[("SOAP", 1)]] * 101)
    assert_problem(_batch(client, county, bodies), 422, "validation_error")
    r = client.post(
        "/api/v1/node/sales/batch",
        json={"sales": bodies[:1]},
        headers=county.clerk_home,
    )
    assert_problem(r, 403, "forbidden")
    assert _count(NodeSale) == 0

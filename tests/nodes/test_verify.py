"""`ledger verify` recomputes the shop nodes' chains too, and names the first bad sale."""

from __future__ import annotations

from sqlalchemy import update

from config.cli import main
from core.db import db
from ledger import services as ledger
from nodes.models import NodeSale
from pos.models import Sale


def _post(client, county, lines):
    node = county.node
    body = node.body(county.household.id, lines)
    r = client.post("/api/v1/node/sales", json=body, headers=node.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    node.accepted(body)
    return r.get_json()


def _verify():
    db.session.rollback()
    report = ledger.verify_ledger(db.session)
    db.session.rollback()
    return report


def test_clean_chains_verify_and_are_counted(client, county, factory):
    for lines in ([("SOAP", 1)], [("RICE-10", 1)], [("SOAP", 2)]):
        _post(client, county, lines)
    report = _verify()
    assert report.ok, report.problems
    assert report.node_sales_checked == 3 and report.first_bad_node_sale is None
    r = client.get("/api/v1/ledger/verify", headers=factory.headers(factory.admin))
    assert r.status_code == 200
    assert r.get_json()["ok"] is True and r.get_json()["node_sales_checked"] == 3


def test_a_changed_hash_is_named(client, county, factory):
    for lines in ([("SOAP", 1)], [("RICE-10", 1)], [("SOAP", 2)]):
        _post(client, county, lines)
    db.session.execute(update(NodeSale).where(NodeSale.seq == 2).values(hash="a" * 64))
    db.session.commit()
    report = _verify()
    assert not report.ok
    assert report.first_bad_node_sale["seq"] == 2
    assert report.first_bad_node_sale["shop_code"] == "GJY"
    r = client.get("/api/v1/ledger/verify", headers=factory.headers(factory.admin))
    assert r.get_json()["ok"] is False
    assert r.get_json()["first_bad_node_sale"]["seq"] == 2


def test_a_changed_amount_is_named(client, county, factory, runner):
    _post(client, county, [("SOAP", 1)])
    second = _post(client, county, [("RICE-10", 1)])
    db.session.execute(update(Sale).where(Sale.id == second["sale_id"]).values(total_points=7))
    db.session.commit()
    report = _verify()
    assert not report.ok
    assert report.first_bad_node_sale == {
        "shop_code": "GJY",
        "seq": 2,
        "sale_id": second["sale_id"],
    }
    result = runner.invoke(main, ["ledger", "verify"])
    assert result.exit_code == 1
    assert "first bad offline sale: shop GJY seq 2" in result.output


def test_changed_lines_or_a_gap_are_named(client, county):
    _post(client, county, [("SOAP", 1)])
    _post(client, county, [("SOAP", 1)])
    _post(client, county, [("SOAP", 1)])
    db.session.execute(update(NodeSale).where(NodeSale.seq == 1).values(lines_json='[["SOAP",9]]'))
    db.session.commit()
    assert _verify().first_bad_node_sale["seq"] == 1
    db.session.execute(update(NodeSale).where(NodeSale.seq == 1).values(lines_json='[["SOAP",1]]'))
    db.session.execute(update(NodeSale).where(NodeSale.seq == 3).values(seq=4))
    db.session.commit()
    report = _verify()
    assert not report.ok and report.first_bad_node_sale["seq"] == 4

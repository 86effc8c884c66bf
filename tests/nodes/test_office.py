"""The county office's list of shop nodes, on its printers page: state, reserve, exceptions."""

from __future__ import annotations

import re

from core.db import db
from nodes import services as nodes
from tests.helpers.pages import sign_in


def _row(html: str, shop: str) -> str:
    found = re.search(rf'<tr data-node="{shop}">(.*?)</tr>', html, re.S)
    assert found, html
    return found.group(1)


def test_the_office_sees_each_node_its_reserve_and_its_exceptions(app, client, county, factory):
    node, household = county.node, county.household
    factory.household(county.village, balance=150)  # 50 above the floor: 50 held back
    body = node.body(household.id, [("SOAP", 1)])
    assert client.post("/api/v1/node/sales", json=body, headers=node.headers).status_code == 201
    node.accepted(body)
    flagged = {**node.body(household.id, [("SOAP", 1)]), "card_digest": "e" * 64}
    assert client.post("/api/v1/node/sales", json=flagged, headers=node.headers).status_code == 201
    report = {"pending_sales": 4, "offline_since": "2026-12-04T08:00:00+08:00"}
    assert client.put("/api/v1/node/report", json=report, headers=node.headers).status_code == 200

    rows = nodes.list_nodes(db.session, actor=factory.admin, allowance_cap=200)
    assert len(rows) == 1
    row = rows[0]
    assert (row.shop_code, row.pending_sales, row.last_seq, row.exceptions) == ("GJY", 4, 2, 1)
    # 600 - 20 spent = 580, floor 100: 200 held back; the other household 50.
    assert (row.reserved_points, row.households) == (250, 2)

    page_client = app.test_client()
    sign_in(page_client, factory.admin.username)
    r = page_client.get("/printers")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "门店节点" in html
    cells = _row(html, "GJY")
    assert "高家堰超市" in cells and "250" in cells and "2026-12-04 08:00" in cells
    assert "所刷的卡不是该户的卡" in html

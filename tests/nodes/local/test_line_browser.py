"""A clerk's counter through a node whose line drops and comes back, in a real browser.

The county (its own app on a loopback port), a TCP line the test cuts, the node's
gateway and syncer in threads: the counter sells online, the line drops mid-queue, the
counter goes on offline and says so, the line returns, the banner says when everything
reached the county, and the next sale is online again with the county's own CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from accounts.auth import Role
from core.db import db
from nodes.local.app import create_local_app
from nodes.local.gateway import Gateway
from nodes.local.store import open_store
from nodes.local.sync import Syncer
from pos.models import Sale
from tests.conftest import browser_sign_in, serve_wsgi
from tests.nodes.conftest import County
from tests.nodes.e2e.proxy import TcpProxy
from tests.pos.test_counter_scanner_browser import burst, settle

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # The page is what is tested here; the sync itself runs on both backends elsewhere.
    return request.param


@dataclass
class Shop:
    url: str
    line: TcpProxy
    syncer: Syncer
    clerk: str
    payload: str


@pytest.fixture
def shop(app: Flask, county: County, live_server: str, tmp_path: Path) -> Iterator[Shop]:
    clerk = county.factory.user(Role.CLERK, shop="GJY").username
    _card, payload = county.factory.card(county.household)
    token = county.node.headers["Authorization"].removeprefix("Bearer ")
    db.session.commit()
    db.session.rollback()
    port = int(live_server.rsplit(":", 1)[1])
    with TcpProxy(port) as line:
        store = open_store(tmp_path / "node")
        syncer = Syncer(store, server_url=line.url, token=token, shop_code="GJY", interval=0.5)
        local = create_local_app(
            database_url=store.url, home=tmp_path / "home", shop_code="GJY", syncer=syncer
        )
        gateway = Gateway(
            local,
            upstream=line.url,
            node_token=token,
            syncer=syncer,
            node=local.extensions["shop_node"],
        )
        assert syncer.run_once()
        syncer.start()
        try:
            with serve_wsgi(gateway) as url:
                yield Shop(url, line, syncer, clerk, payload)
        finally:
            syncer.stop()
            store.close()


def _sell(page: Any, payload: str, *goods: str) -> str:
    """Scan the card and the goods at a scanner's speed, confirm; the receipt number."""
    page.keyboard.press("Escape")
    burst(page, payload, *goods)
    settle(page)
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-receipt]').textContent.includes('GJY-')"
    )
    text = page.inner_text("[data-receipt]")
    return next(word for word in text.split() if word.startswith("GJY-"))


def test_the_line_drops_mid_queue_and_comes_back(page: Any, shop: Shop) -> None:
    browser_sign_in(page, shop.url, shop.clerk)
    page.goto(f"{shop.url}/counter")
    page.wait_for_function("() => document.querySelector('[data-counter][data-state]')")
    banner = page.locator("[data-node-banner]")

    online = _sell(page, shop.payload, "SOAP")
    assert "-L" not in online
    assert banner.is_hidden()

    shop.line.cut()
    offline = _sell(page, shop.payload, "SOAP", "SOAP")
    assert "-L0001" in offline
    page.locator("[data-node-banner][data-state='offline']").wait_for()
    assert "与县里的连接已断开" in banner.inner_text()
    assert "1 笔销售等待上传" in banner.inner_text()

    shop.line.restore()
    page.locator("[data-node-banner][data-state='synced']").wait_for(timeout=20_000)
    assert "全部销售已上传到县里" in banner.inner_text()

    # Online again, with the county's own token taken from a fresh copy of the page.
    again = _sell(page, shop.payload, "SOAP")
    assert "-L" not in again
    db.session.rollback()
    receipts = set(db.session.scalars(db.select(Sale.receipt_no)).all())
    db.session.rollback()
    assert {online, offline, again} <= receipts

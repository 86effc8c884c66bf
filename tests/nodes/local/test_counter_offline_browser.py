"""The counter behind a node whose line is down, in a real browser at a scanner's speed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodes.local import clock
from nodes.local.app import create_local_app
from nodes.local.store import Store
from tests.conftest import browser_sign_in, serve_wsgi
from tests.helpers.text import full_width
from tests.nodes.local.conftest import payload
from tests.nodes.local.test_app import PASSWORD, Away
from tests.pos.test_counter_scanner_browser import burst, settle

pytestmark = pytest.mark.browser


@pytest.fixture
def node_url(store: Store, tmp_path: Path) -> Iterator[str]:
    app = create_local_app(
        database_url=store.url, home=tmp_path / "home", shop_code="GJY", syncer=Away()
    )
    # As when clerk-gjy signed in through the node while the line was up.
    app.extensions["shop_node"].sign_in_accepted("clerk-gjy", PASSWORD, clock.now())
    with serve_wsgi(app) as url:
        yield url


def test_the_counter_sells_offline_and_says_so(page: Any, node_url: str) -> None:
    browser_sign_in(page, node_url, "clerk-gjy", PASSWORD)
    page.goto(f"{node_url}/counter")
    page.wait_for_function("() => document.querySelector('[data-counter][data-state]')")
    banner = page.locator("[data-node-banner][data-state='offline']")
    banner.wait_for()
    assert "与县里的连接已断开" in banner.inner_text()
    assert "0 笔销售等待上传" in banner.inner_text()

    # Caps Lock on for the card, a Chinese input method's full-width digits for the goods.
    burst(page, payload(7).lower(), "SOAP", full_width("SOAP"))
    settle(page)
    assert page.inner_text("[data-head]") == "郑大山"
    assert page.inner_text("[data-spendable]") == "200"
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    # The receipt comes from the node, numbered in its own series.
    page.wait_for_function(
        "() => document.querySelector('[data-receipt]').textContent.includes('L0001')"
    )
    assert page.inner_text("[data-spendable]") == "180"
    page.wait_for_function(
        "() => document.querySelector('[data-node-text]').textContent.includes('1 笔销售')"
    )
    # A second Enter on the finished sale sells nothing more.
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    status = page.evaluate("fetch('/node/status').then(r => r.json())")
    assert status["pending_sales"] == 1

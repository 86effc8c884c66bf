"""Another shop's counter says how many points are kept for the household's home shop node."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.db import db, utcnow
from ledger import services as ledger
from nodes import services as nodes
from tests.factories import Factory
from tests.pos.conftest import Counter
from tests.pos.test_counter_scanner_browser import (  # noqa: F401  (codes is a fixture)
    Codes,
    burst,
    codes,
    open_counter,
    settle,
)

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # The page's words are tested here; the escrow itself runs on both backends elsewhere.
    return request.param


def test_the_counter_says_what_the_home_shop_keeps(
    live_server: str,
    page: Any,
    factory: Factory,
    counter: Counter,
    codes: Codes,  # noqa: F811
) -> None:
    # The household (300 points, floor 0) belongs to a village whose home shop BSP runs a
    # node: GJY's counter may spend 100 of them, and says where the other 200 are.
    factory.shop("BSP", name="白沙坪超市")
    ledger.update_village(db.session, actor=factory.admin, code="ZJB", shop_code="BSP")
    nodes.register_node(
        db.session,
        now=utcnow(),
        shop_code="BSP",
        username="node-bsp",
        token_ttl=timedelta(days=1),
    )
    db.session.commit()
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload)
    settle(page)
    assert page.inner_text("[data-spendable]") == "100"
    note = page.locator("[data-reserved-box]")
    assert note.is_visible()
    assert note.inner_text() == "另有 200 积分留作白沙坪超市断网时使用。"
    # After a sale of 70 the note still holds 200: the reserve stays whole.
    burst(page, codes.rice)
    settle(page)
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    assert page.inner_text("[data-spendable]") == "30"
    assert note.inner_text() == "另有 200 积分留作白沙坪超市断网时使用。"

"""The balance page on a phone: no sideways scrolling at 390 px, idle or with a household shown."""

from __future__ import annotations

from typing import Any

import pytest

from core.db import db, utcnow
from ledger import services as ledger
from tests.member_cards.conftest import County

pytestmark = [
    pytest.mark.browser,
    # One backend is enough to lay out a page; the services are tested on both.
    pytest.mark.parametrize("backend", ["sqlite"]),
]

PHONE = {"width": 390, "height": 844}


def scroll_width(page: Any) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_balance_page_with_a_result_fits_a_phone(
    app: Any, live_server: str, page: Any, factory: Any, county: County
) -> None:
    household = county.away
    for n, (points, reason) in enumerate(
        [
            (5, "参加村里组织的环境卫生大扫除志愿服务活动，清理河道垃圾"),
            (-8, "焚烧秸秆"),
            (12, "赡养老人孝老爱亲事迹突出"),
            (3, "Volunteer-road-cleaning-without-any-spaces-in-it"),
        ]
    ):
        ledger.post_award(
            db.session,
            actor=factory.admin,
            now=utcnow(),
            household_id=household.id,
            idempotency_key=f"phone-{n}",
            points=points,
            reason=reason,
        )
    db.session.commit()
    _card, payload = factory.card(household)
    # SQLite: the test's own session must not hold the write lock the server needs.
    db.session.rollback()
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/balance")
    page.wait_for_selector("[data-idle]")
    assert scroll_width(page) <= 390

    page.keyboard.type(payload, delay=2)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-found]")
    assert scroll_width(page) <= 390
    assert page.locator(".balance-entries tbody tr").count() == 5
    # Each entry keeps its figures on screen: the points and the balance after it.
    box = page.locator(".balance-entries .entry-after").first.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    assert page.inner_text(".balance-entries .entry-after >> nth=0").endswith("312")

    # A refused card's message fits as well.
    page.keyboard.type("NOT-A-CARD-" + "X" * 60, delay=1)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-refused]")
    assert scroll_width(page) <= 390

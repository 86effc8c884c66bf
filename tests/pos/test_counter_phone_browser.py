"""The counter on a phone: no sideways scrolling at 390 px, from the first scan to the receipt."""

from __future__ import annotations

from typing import Any

import pytest

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
    # What is tested is the page's layout; the services run on both backends elsewhere.
    return request.param


def scroll_width(page: Any) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize(("who", "language"), [("clerk", "中文"), ("manager", "English")])
def test_the_counter_fits_390_px_wide(
    live_server: str,
    page: Any,
    factory: Factory,
    counter: Counter,
    codes: Codes,  # noqa: F811
    who: str,
    language: str,
) -> None:
    # A name a supplier might write, with no place to break it.
    long = factory.product(
        "LONGNAME", name="Imported-washing-powder-concentrated-family-pack-5kg", points_price=5
    )
    factory.receive(counter.shop, (long, 10))
    page.set_viewport_size({"width": 390, "height": 844})
    open_counter(page, live_server, getattr(codes, who))
    if language == "English":
        page.click("text=English")
        page.wait_for_function("() => document.querySelector('[data-counter][data-state]')")
    # Measured before the stylesheet applies, a page is wider than it will be: wait for it.
    page.wait_for_load_state()
    seen = {"idle": scroll_width(page)}
    burst(page, "6909999999994", "NO-SUCH-GOODS-" + "X" * 40)
    settle(page)
    seen["unknown codes"] = scroll_width(page)
    burst(page, codes.payload, codes.rice, codes.oil, "LONGNAME")
    settle(page)
    seen["cart"] = scroll_width(page)
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    seen["receipt"] = scroll_width(page)
    assert max(seen.values()) <= 390, seen

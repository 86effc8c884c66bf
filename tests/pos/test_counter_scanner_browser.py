"""The counter against real scanners and real clerks: bursts, Caps Lock, input methods, slips."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from core.db import db, utcnow
from member_cards import services as cards
from pos.models import Sale
from tests.conftest import browser_sign_in
from tests.factories import Factory
from tests.helpers.text import full_width
from tests.pos.conftest import Counter, balance, on_hand
from tests.printing.fake_printer import FakePrinter

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # What is tested is the page and its script; the services run on both backends elsewhere.
    return request.param


def zh(message: str, **values: Any) -> str:
    with force_locale("zh_Hans_CN"):
        return _(message, **values)


def burst(page: Any, *codes: str) -> None:
    """A keyboard-wedge scanner at full speed: every code and its Enter, no pause at all."""
    page.keyboard.type("".join(code + "\n" for code in codes))


def settle(page: Any) -> None:
    """Wait until every queued scan has been handled."""
    page.wait_for_function(
        "() => { const c = document.querySelector('[data-counter]');"
        " return c && c.dataset.queued === '0'; }"
    )


def state(page: Any) -> str:
    return page.get_attribute("[data-counter]", "data-state")


def cart(page: Any) -> dict[str, int]:
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-lines] tr[data-sku]')]"
        ".map(r => [r.dataset.sku, parseInt(r.querySelector('[data-qty]').value, 10)]))"
    )


def sales_count() -> int:
    db.session.rollback()
    try:
        return int(db.session.scalar(select(func.count()).select_from(Sale)))
    finally:
        db.session.rollback()


def open_counter(page: Any, live_server: str, username: str, path: str = "/counter") -> None:
    # On SQLite even a read holds the write lock until the transaction ends.
    db.session.rollback()
    browser_sign_in(page, live_server, username)
    page.goto(f"{live_server}{path}")
    page.wait_for_function("() => document.querySelector('[data-counter][data-state]')")
    assert page.evaluate("document.activeElement.matches('[data-scan]')")


@dataclass(frozen=True)
class Codes:
    """What the scanner types, read once: an ORM attribute read later, between the page's
    requests, would open a transaction that holds SQLite's write lock against the server."""

    clerk: str
    manager: str
    payload: str
    head: str
    rice: str
    oil: str
    soap: str


@pytest.fixture
def codes(counter: Counter) -> Codes:
    return Codes(
        clerk=counter.clerk.username,
        manager=counter.manager.username,
        payload=counter.payload,
        head=counter.household.head_name,
        rice=counter.rice.barcode,
        oil=counter.oil.barcode,
        soap=counter.soap.barcode,
    )


@pytest.fixture
def rich(factory: Factory, counter: Counter, codes: Codes) -> Any:
    """A second household of the same village with points to spare, and its card."""
    household = factory.household(
        counter.household.village, balance=5000, head="向明春", members=("向明春",)
    )
    _card, payload = factory.card(household)
    return household, payload


def test_a_card_and_ten_barcodes_at_full_speed_all_land_in_order(
    live_server: str, page: Any, counter: Counter, codes: Codes, rich: Any
) -> None:
    household, payload = rich
    rice, oil, soap = codes.rice, codes.oil, codes.soap
    scans = [rice, soap, oil, soap, rice, soap, soap, oil, soap, rice]
    open_counter(page, live_server, codes.clerk)

    burst(page, payload, *scans)
    settle(page)

    assert cart(page) == {"RICE-10": 3, "SOAP": 5, "OIL-5L": 2}
    # In the order scanned: rice first, then soap, then oil.
    skus = page.eval_on_selector_all(
        "[data-lines] tr[data-sku]", "rs => rs.map(r => r.dataset.sku)"
    )
    assert skus == ["RICE-10", "SOAP", "OIL-5L"]
    assert page.inner_text("[data-customer] [data-head]") == "向明春"
    assert page.inner_text("[data-total]") == str(3 * 70 + 5 * 5 + 2 * 120)

    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    assert balance(household) == 5000 - 475
    assert on_hand(counter.shop, counter.soap) == 95


def test_an_unknown_code_in_a_burst_is_named_and_the_others_are_kept(
    live_server: str, page: Any, counter: Counter, codes: Codes
) -> None:
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, codes.rice, "6909999999994", codes.oil)
    settle(page)
    assert cart(page) == {"RICE-10": 1, "OIL-5L": 1}
    # The last message is the oil's; the refusal sounded and named the code when it came.
    assert page.get_attribute("body", "data-last-sound") == "beep"
    burst(page, "6909999999994")
    settle(page)
    assert "6909999999994" in page.inner_text("[data-status]")
    assert page.get_attribute("body", "data-last-sound") == "refuse"


def test_caps_lock_and_full_width_cards_and_barcodes_are_read_as_typed_normally(
    live_server: str, page: Any, counter: Counter, codes: Codes
) -> None:
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload.lower())
    settle(page)
    assert page.inner_text("[data-customer] [data-head]") == codes.head
    assert state(page) == "serving"

    page.keyboard.press("Escape")
    settle(page)
    assert state(page) == "waiting"
    burst(page, full_width(codes.payload), full_width(codes.rice), " " + "soap\t")
    settle(page)
    assert page.inner_text("[data-customer] [data-head]") == codes.head
    assert cart(page) == {"RICE-10": 1, "SOAP": 1}


def test_enter_five_times_after_a_sale_makes_one_sale_and_keeps_the_receipt(
    live_server: str, page: Any, counter: Counter, codes: Codes
) -> None:
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, codes.rice)
    settle(page)
    for _n in range(5):
        page.keyboard.press("Enter")
    settle(page)

    assert state(page) == "done"
    assert sales_count() == 1
    assert balance(counter.household) == 230
    assert "GJY-" in page.inner_text("[data-receipt]")
    assert page.is_visible("[data-receipt]")
    assert page.inner_text("[data-status]") == zh("Scan the next customer's card.")
    assert page.inner_text("[data-remaining]") == "230"


def test_after_a_sale_the_cart_cannot_be_changed(
    live_server: str, page: Any, counter: Counter, codes: Codes
) -> None:
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, codes.rice, codes.soap)
    settle(page)
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    settle(page)
    assert page.inner_text("[data-total]") == "75"

    # ✕ is gone after the sale; a script (or a stale touch) clicking it changes nothing.
    assert page.locator("[data-remove]").first.is_hidden()
    page.evaluate("document.querySelector('[data-remove]').click()")
    for key in ("Delete", "+", "-", "ArrowUp"):
        page.keyboard.press(key)
    burst(page, "*5")
    settle(page)
    assert cart(page) == {"RICE-10": 1, "SOAP": 1}
    assert page.inner_text("[data-total]") == "75"
    assert state(page) == "done"
    assert page.get_attribute("body", "data-last-sound") == "refuse"

    # Goods scanned now belong to nobody yet: refused, named, and the sale stays shown.
    burst(page, codes.oil)
    settle(page)
    assert codes.oil in page.inner_text("[data-status]")
    assert cart(page) == {"RICE-10": 1, "SOAP": 1}
    # The next card starts an empty cart.
    burst(page, codes.payload)
    settle(page)
    assert state(page) == "serving" and cart(page) == {}
    assert page.is_hidden("[data-receipt]")


def test_a_revoked_card_mid_cart_clears_the_customer_and_enter_charges_nobody(
    live_server: str, page: Any, factory: Factory, counter: Counter, codes: Codes
) -> None:
    other = factory.household(
        counter.household.village, balance=900, head="李桂兰", members=("李桂兰",)
    )
    card, revoked = factory.card(other)
    cards.revoke_card(db.session, actor=factory.admin, now=utcnow(), card_id=card.id, reason="丢失")
    db.session.commit()
    open_counter(page, live_server, codes.clerk)

    burst(page, codes.payload, codes.rice, revoked)
    settle(page)
    assert state(page) == "waiting"
    assert page.is_hidden("[data-customer]")
    assert cart(page) == {"RICE-10": 1}
    assert page.get_attribute("body", "data-last-sound") == "refuse"

    page.keyboard.press("Enter")
    settle(page)
    assert sales_count() == 0
    assert balance(counter.household) == 300 and balance(other) == 900
    assert page.inner_text("[data-status]") == zh("Scan the member card first.")

    # A good card brings the customer back; the goods are still there.
    burst(page, codes.payload)
    settle(page)
    assert state(page) == "serving" and cart(page) == {"RICE-10": 1}


def test_a_second_card_mid_cart_is_asked_about_and_never_switched_silently(
    live_server: str, page: Any, counter: Counter, codes: Codes, rich: Any
) -> None:
    household, payload = rich
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, codes.rice, payload)
    # The question holds the queue (and so `settle`) until it is answered.
    page.locator("[data-counter][data-state='asking']").wait_for()
    assert page.is_visible("[data-ask]")
    assert "向明春" in page.inner_text("[data-ask]")
    assert page.inner_text("[data-customer] [data-head]") == codes.head

    # Esc keeps the customer on screen.
    page.keyboard.press("Escape")
    settle(page)
    assert state(page) == "serving"
    assert page.inner_text("[data-customer] [data-head]") == codes.head
    assert page.is_hidden("[data-ask]")

    # Asked again; scans typed while the question stands wait for the answer, in order.
    burst(page, payload, codes.soap)
    page.locator("[data-counter][data-state='asking']").wait_for()
    page.keyboard.press("Enter")
    settle(page)
    assert page.inner_text("[data-customer] [data-head]") == "向明春"
    assert cart(page) == {"RICE-10": 1, "SOAP": 1}
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    assert balance(household) == 5000 - 75
    assert balance(counter.household) == 300


def test_an_enter_typed_before_a_customer_change_does_not_confirm_for_the_new_one(
    live_server: str, page: Any, counter: Counter, codes: Codes, rich: Any
) -> None:
    _household, payload = rich
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, codes.rice)
    settle(page)
    # A second card and, before the page has asked, an Enter: that Enter answers nothing.
    burst(page, payload, "")
    page.locator("[data-counter][data-state='asking']").wait_for()
    page.keyboard.press("Enter")  # now the answer: switch
    settle(page)
    assert state(page) == "serving"
    assert sales_count() == 0


def test_out_of_stock_warns_at_scan_and_a_manager_records_the_goods_in_hand(
    live_server: str, page: Any, factory: Factory, counter: Counter, codes: Codes
) -> None:
    tea = factory.product("TEA", name="茶叶", points_price=30, barcode="6903333333330")
    tea_code = tea.barcode
    open_counter(page, live_server, codes.manager)
    burst(page, codes.payload, tea_code)
    settle(page)

    warning = page.locator("[data-stock-warning]")
    assert warning.is_visible()
    assert "茶叶" in warning.inner_text() and "0" in warning.inner_text()
    assert page.get_attribute("body", "data-last-sound") == "warn"
    assert (
        page.locator("[data-lines] tr[data-sku='TEA']").get_attribute("class").count("out-of-stock")
    )
    # Confirming now is refused at the counter, before anything is sent.
    page.keyboard.press("Enter")
    settle(page)
    assert sales_count() == 0 and state(page) == "serving"

    page.fill("[data-receive-qty]", "６")  # typed with a Chinese input method
    page.click("[data-stock-warning] button[type=submit]")
    warning.wait_for(state="hidden")
    settle(page)
    assert on_hand(counter.shop, tea) == 6
    assert page.evaluate("document.activeElement.matches('[data-scan]')")
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    assert on_hand(counter.shop, tea) == 5
    assert balance(counter.household) == 270


def test_a_clerk_is_warned_of_missing_stock_and_told_who_can_record_it(
    live_server: str, page: Any, factory: Factory, counter: Counter, codes: Codes
) -> None:
    tea = factory.product("TEA", name="茶叶", points_price=30, barcode="6903333333330")
    tea_code = tea.barcode
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, tea_code)
    settle(page)
    warning = page.locator("[data-stock-warning]")
    assert warning.is_visible()
    assert page.locator("[data-receive-form]").count() == 0
    assert zh("A manager can record the goods received from this counter.") in (
        warning.inner_text()
    )


def test_a_shop_that_may_sell_below_zero_warns_and_sells(
    live_server: str, page: Any, factory: Factory, counter: Counter, codes: Codes
) -> None:
    counter.shop.allow_negative_stock = True
    db.session.commit()
    tea = factory.product("TEA", name="茶叶", points_price=30, barcode="6903333333330")
    tea_code = tea.barcode
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, tea_code)
    settle(page)
    assert page.locator("[data-stock-warning].stock-negative").is_visible()
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    assert on_hand(counter.shop, tea) == -1


def test_sounds_beep_refuse_and_chime_and_the_toggle_is_kept(
    live_server: str, page: Any, counter: Counter, codes: Codes
) -> None:
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload)
    settle(page)
    assert page.get_attribute("body", "data-last-sound") == "beep"
    burst(page, "NOT-A-THING")
    settle(page)
    assert page.get_attribute("body", "data-last-sound") == "refuse"
    burst(page, codes.rice, "")
    page.locator("[data-counter][data-state='done']").wait_for()
    assert page.get_attribute("body", "data-last-sound") == "chime"

    toggle = page.locator("[data-sound-toggle]")
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    page.reload()
    assert page.locator("[data-sound-toggle]").get_attribute("aria-pressed") == "false"


def test_no_printer_set_up_is_said_after_the_sale(
    live_server: str, page: Any, counter: Counter, codes: Codes
) -> None:
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, codes.soap, "")
    page.locator("[data-counter][data-state='done']").wait_for()
    box = page.locator("[data-print-state][data-print-state='no_printer']")
    box.wait_for()
    text = box.inner_text()
    assert text.strip() and not any("a" <= ch.lower() <= "z" for ch in text), text
    assert page.locator("[data-print-retry]").is_hidden()


def test_the_customer_display_follows_the_counter_without_the_server(
    live_server: str, page: Any, counter: Counter, codes: Codes
) -> None:
    open_counter(page, live_server, codes.clerk)
    display = page.context.new_page()
    display.goto(f"{live_server}/counter/display")
    display.locator("[data-display]").wait_for()
    assert display.locator("a, button, input").count() == 0

    page.bring_to_front()
    burst(page, codes.payload, codes.rice)
    settle(page)
    display.locator("[data-display-customer]").filter(has_text=codes.head).wait_for()
    display.locator("[data-display-lines] tr").filter(has_text="大米 10斤").wait_for()
    assert display.inner_text("[data-display-total]") == "70"
    assert display.inner_text("[data-display-balance]") == "230"

    burst(page, codes.rice)
    settle(page)
    display.locator("[data-display-total]").filter(has_text="140").wait_for()

    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    display.locator("[data-display][data-state='done']").wait_for()
    assert display.inner_text("[data-display-balance]") == "160"
    assert "GJY-" in display.inner_text("[data-display-thanks]")


def test_the_counter_fits_800_by_600_and_a_phone(
    live_server: str, page: Any, counter: Counter, codes: Codes, rich: Any
) -> None:
    _household, payload = rich
    open_counter(page, live_server, codes.clerk)
    page.set_viewport_size({"width": 800, "height": 600})
    burst(page, payload, *[codes.rice] * 3, codes.oil, codes.soap)
    settle(page)
    box = page.locator("[data-total]").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 600

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => window.innerWidth === 390")
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    box = page.locator("[data-total]").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    page.keyboard.press("Enter")
    page.locator("[data-counter][data-state='done']").wait_for()
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def test_the_receiving_page_takes_full_width_and_lower_case_codes_in_a_burst(
    live_server: str, page: Any, factory: Factory, counter: Counter, codes: Codes
) -> None:
    db.session.rollback()
    browser_sign_in(page, live_server, codes.manager)
    page.goto(f"{live_server}/shops/GJY/stock/receive")
    page.locator("[data-scan]").wait_for()
    burst(
        page,
        full_width(codes.rice),
        "soap",
        codes.oil,
        full_width("soap"),
        codes.rice,
    )
    page.wait_for_function("() => document.querySelector('form[data-queued=\"0\"]')")
    quantities = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-lines] tr[data-sku]')]"
        ".map(r => [r.dataset.sku, r.querySelector('input[type=number]').value]))"
    )
    assert quantities == {"RICE-10": "2", "SOAP": "2", "OIL-5L": "1"}


def test_a_receipt_that_did_not_print_says_why_in_chinese_and_retry_prints_it(
    worker_app: Any, live_server: str, page: Any, codes: Codes, fake: FakePrinter
) -> None:
    fake.set("refuse")
    open_counter(page, live_server, codes.clerk)
    burst(page, codes.payload, codes.soap, "")
    page.locator("[data-counter][data-state='done']").wait_for()
    failed = page.locator("[data-print-state][data-print-state='failed']")
    failed.wait_for(timeout=15_000)
    text = page.inner_text("[data-print-message]")
    assert "Errno" not in text and not any("a" <= ch.lower() <= "z" for ch in text), text
    assert page.is_visible("[data-print-retry]")

    fake.set("ok")
    page.click("[data-print-retry]")
    page.locator("[data-print-state][data-print-state='printed']").wait_for(timeout=15_000)
    assert len(fake.wait_for_jobs(1)) == 1
    assert page.is_hidden("[data-print-retry]")
    assert page.evaluate("document.activeElement.matches('[data-scan]')")
    # Still the finished sale on screen: the next card starts the next one.
    assert state(page) == "done"

"""The printer in headless Chromium: the counter shows a failed receipt, Retry prints it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from core.db import db
from tests.pos.conftest import Counter
from tests.pos.test_counter_browser import _open_counter, scan
from tests.printing.fake_printer import FakePrinter

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_a_receipt_that_did_not_print_is_retried_from_the_counter_and_reprinted(
    worker_app: Flask, live_server: str, page: Any, counter: Counter, fake: FakePrinter
) -> None:
    fake.set("refuse")
    username, payload, rice_code = counter.clerk.username, counter.payload, counter.rice.barcode
    db.session.rollback()
    _open_counter(page, live_server, username)
    line = page.locator("[data-printer]")
    line.wait_for()
    page.locator("[data-printer-state].printer-unreachable").wait_for()

    scan(page, payload)
    page.locator("[data-spendable]").filter(has_text="300").wait_for()
    scan(page, rice_code)
    page.locator("[data-lines] tr[data-sku='RICE-10']").wait_for()
    page.keyboard.press("Enter")
    page.locator("[data-receipt]").filter(has_text="GJY-").wait_for()
    failed = page.locator("[data-printer-failed]")
    failed.wait_for(timeout=15_000)
    assert fake.jobs() == []

    fake.set("ok")
    page.click("[data-printer-retry]")
    failed.wait_for(state="hidden", timeout=15_000)
    assert len(fake.wait_for_jobs(1)) == 1
    assert page.evaluate("document.activeElement.matches('[data-scan]')")

    # The sale's print panel: its jobs, and a reprint marked as a copy.
    db.session.rollback()
    sale_id = _last_sale_id()
    page.goto(f"{live_server}/test-print-panel/{sale_id}")
    page.locator("[data-print-jobs] li[data-status='printed']").wait_for()
    page.click("[data-print]")
    page.locator("[data-print-jobs] li").nth(1).wait_for()
    page.locator("[data-print-jobs] li[data-status='printed']").nth(1).wait_for(timeout=15_000)
    assert len(fake.wait_for_jobs(2)) == 2


def _last_sale_id() -> int:
    from sqlalchemy import func, select

    from pos.models import Sale

    try:
        return int(db.session.scalar(select(func.max(Sale.id))))
    finally:
        db.session.rollback()

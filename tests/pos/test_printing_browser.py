"""The printer in headless Chromium: the counter shows a failed receipt, Retry prints it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, render_template_string

from config.db import db
from pos import print_worker
from tests.factories import Factory
from tests.pos.conftest import Counter
from tests.pos.fake_printer import FakePrinter
from tests.pos.test_counter_browser import _open_counter, scan
from tests.pos.test_printing import set_printer

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fake() -> Iterator[FakePrinter]:
    printer = FakePrinter()
    yield printer
    printer.close()


@pytest.fixture
def worker_app(
    app: Flask, counter: Counter, factory: Factory, fake: FakePrinter
) -> Iterator[Flask]:
    """The server sends to the fake printer itself, through its worker thread."""
    set_printer(factory, connection={**fake.connection, "timeout": 0.3})
    app.config.update(PRINT_WORKER=True, PRINT_POLL_SECONDS=0.2, PRINT_STATUS_CACHE_SECONDS=0)

    # A page with nothing but the print panel, as the sale and report pages include it.
    @app.route("/test-print-panel/<int:sale_id>")
    def _panel(sale_id: int) -> str:
        from pos.models import Sale

        return render_template_string(
            '{% extends "base.html" %}{% from "pos/_printing.html" import print_panel %}'
            "{% block content %}{{ print_panel(sale=sale) }}{% endblock %}",
            sale=db.session.get(Sale, sale_id),
        )

    db.session.rollback()
    yield app
    worker = print_worker.state(app).worker
    if worker is not None:
        worker.stop()


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

"""Printing fixtures shared by the printing tests and the counter's browser tests.

A conftest only reaches the tests below it; the counter's scanner test prints too, so both
tests/printing/conftest.py and tests/pos/conftest.py import these.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, render_template_string

from core.db import db, utcnow
from pos.models import Sale
from printing import services as printing
from printing import worker as print_worker
from tests.factories import Factory
from tests.printing.fake_printer import FakePrinter


@pytest.fixture
def fake() -> Iterator[FakePrinter]:
    printer = FakePrinter()
    yield printer
    printer.close()


def set_printer(factory: Factory, shop_code: str = "GJY", **settings: Any) -> None:
    values: dict[str, Any] = {"kind": "network", "connection": {}, "paper_mm": 58, "mode": "text"}
    values.update(settings)
    printing.save_printer(
        db.session,
        actor=factory.admin,
        shop_code=shop_code,
        now=utcnow(),
        printers=print_worker.state().printers,
        **values,
    )
    db.session.commit()


@pytest.fixture
def worker_app(app: Flask, counter: Any, factory: Factory, fake: FakePrinter) -> Iterator[Flask]:
    """The server sends to the fake printer itself, through its worker thread.

    `counter` (tests/pos/conftest.py) sets up shop GJY, whose printer this is.
    """
    set_printer(factory, connection={**fake.connection, "timeout": 0.3})
    app.config.update(PRINT_WORKER=True, PRINT_POLL_SECONDS=0.2, PRINT_STATUS_CACHE_SECONDS=0)

    # A page with nothing but the print panel, as the sale and report pages include it.
    @app.route("/test-print-panel/<int:sale_id>")
    def _panel(sale_id: int) -> str:
        return render_template_string(
            '{% extends "base.html" %}{% from "printing/_panel.html" import print_panel %}'
            "{% block content %}{{ print_panel(sale=sale) }}{% endblock %}",
            sale=db.session.get(Sale, sale_id),
        )

    db.session.rollback()
    yield app
    worker = print_worker.state(app).worker
    if worker is not None:
        worker.stop()

"""Counter fixtures: a shop with goods on its shelves, a household with points, the staff."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, render_template_string
from sqlalchemy import select

from accounts.auth import Role, User
from core.db import db, utcnow
from inventory.models import Product, Shop, StockLevel
from ledger.models import Account, Household
from pos import print_worker, printing
from tests.factories import Factory
from tests.pos.fake_printer import FakePrinter


@dataclass
class Counter:
    shop: Shop
    rice: Product
    oil: Product
    soap: Product
    household: Household
    payload: str
    clerk: User
    manager: User
    clerk_headers: dict[str, str]
    manager_headers: dict[str, str]


@pytest.fixture
def counter(factory: Factory) -> Counter:
    """Shop GJY stocked with rice (70), oil (120) and soap (5); a household of 300 points."""
    shop = factory.shop("GJY")
    rice = factory.product("RICE-10", name="大米 10斤", points_price=70, barcode="6901234567892")
    oil = factory.product(
        "OIL-5L", name="菜籽油 5升", points_price=120, unit="桶", barcode="6902345678903"
    )
    soap = factory.product("SOAP", name="肥皂", points_price=5, unit="块")
    factory.receive(shop, (rice, 20), (oil, 10), (soap, 100))
    village = factory.village("ZJB", name="郑家榜村")
    household = factory.household(village, balance=300)
    _card, payload = factory.card(household)
    clerk = factory.user(Role.CLERK, shop="GJY", username="clerk-gjy")
    manager = factory.user(Role.MANAGER, shop="GJY", username="manager-gjy")
    return Counter(
        shop=shop,
        rice=rice,
        oil=oil,
        soap=soap,
        household=household,
        payload=payload,
        clerk=clerk,
        manager=manager,
        clerk_headers=factory.headers(clerk),
        manager_headers=factory.headers(manager),
    )


def balance(household: Household) -> int:
    """Read in a fresh transaction, ended at once: on SQLite it holds the write lock."""
    household_id = household.id
    db.session.rollback()
    try:
        return int(
            db.session.scalar(select(Account.balance).where(Account.household_id == household_id))
        )
    finally:
        db.session.rollback()


def on_hand(shop: Shop, product: Product) -> int:
    shop_id, product_id = shop.id, product.id
    db.session.rollback()
    try:
        level = db.session.scalar(
            select(StockLevel.on_hand).where(
                StockLevel.shop_id == shop_id, StockLevel.product_id == product_id
            )
        )
        return 0 if level is None else int(level)
    finally:
        db.session.rollback()


def sale_body(counter: Counter, *lines: dict[str, Any], key: str = "k-1", **extra: Any) -> dict:
    body: dict[str, Any] = {"household_id": counter.household.id}
    body.update(extra)
    if "card_payload" in extra:
        body.pop("household_id")
    body["lines"] = list(lines)
    body["idempotency_key"] = key
    return body


@pytest.fixture
def fake() -> Iterator[FakePrinter]:
    printer = FakePrinter()
    yield printer
    printer.close()


def set_printer(factory: Factory, shop_code: str = "GJY", **settings: Any) -> None:
    values: dict[str, Any] = {"kind": "network", "connection": {}, "paper_mm": 58, "mode": "text"}
    values.update(settings)
    printing.save_printer(
        db.session, actor=factory.admin, shop_code=shop_code, now=utcnow(), **values
    )
    db.session.commit()


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

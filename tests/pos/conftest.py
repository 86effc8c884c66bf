"""Counter fixtures: a shop with goods on its shelves, a household with points, the staff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from accounts.auth import Role, User
from core.db import db
from inventory.models import Product, Shop, StockLevel
from ledger.models import Account, Household
from tests.factories import Factory

# The counter's scanner test watches its receipt print: printing's fixtures, here too.
from tests.printing.fixtures import fake, worker_app  # noqa: F401


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

"""Inventory fixtures: two shops, two goods with manufacturer barcodes, and their staff."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.auth import Role
from inventory.models import Product, Shop
from tests.factories import Factory


@pytest.fixture
def shop(factory: Factory) -> Shop:
    return factory.shop("GJY")


@pytest.fixture
def other_shop(factory: Factory) -> Shop:
    return factory.shop("ZJB", name="郑家榜诚信超市")


@pytest.fixture
def rice(factory: Factory) -> Product:
    return factory.product("RICE-10", name="大米 10斤", barcode="6901234567892")


@pytest.fixture
def oil(factory: Factory) -> Product:
    return factory.product(
        "OIL-5L", name="菜籽油 5升", points_price=120, unit="桶", barcode="6902345678903"
    )


@pytest.fixture
def manager(factory: Factory, shop: Shop) -> Any:
    return factory.user(Role.MANAGER, shop=shop.code)


@pytest.fixture
def as_manager(factory: Factory, manager: Any) -> dict[str, str]:
    return factory.headers(manager)


@pytest.fixture
def as_admin(factory: Factory) -> dict[str, str]:
    return factory.headers(factory.admin)

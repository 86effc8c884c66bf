"""Test helpers: reading stock back, and signing in to the pages with a CSRF token."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from core.db import db
from inventory.models import Product, Shop, StockLevel, StockMovement
from tests.factories import PASSWORD


def on_hand(shop: Shop, product: Product) -> int:
    db.session.expire_all()
    level = db.session.get(StockLevel, (shop.id, product.id))
    return 0 if level is None else level.on_hand


def movement_count() -> int:
    return db.session.scalar(select(func.count(StockMovement.id))) or 0


def form_value(html: str, name: str) -> str:
    """The value of the first input with this name in a page (the CSRF token, a key)."""
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html
    )
    assert match, f"no input {name} in the page"
    return match.group(1)


def sign_in(client: Any, username: str, password: str = PASSWORD) -> None:
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": form_value(page, "csrf_token"),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)

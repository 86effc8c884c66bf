"""Test helpers: reading stock back."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from inventory.models import Product, Shop, StockLevel, StockMovement


def on_hand(shop: Shop, product: Product) -> int:
    db.session.expire_all()
    level = db.session.get(StockLevel, (shop.id, product.id))
    return 0 if level is None else level.on_hand


def movement_count() -> int:
    return db.session.scalar(select(func.count(StockMovement.id))) or 0

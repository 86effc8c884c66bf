"""Inventory operations. Each takes the session, the acting user and the time; none commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from config.errors import Conflict, Forbidden, NotFound, ValidationFailed
from inventory.models import MovementKind, Product, Shop, StockLevel, StockMovement

if TYPE_CHECKING:
    from config.auth import User


def create_shop(session: Session, *, actor: User, now: datetime, code: str, name: str) -> Shop:
    if not actor.is_admin:
        raise Forbidden(_l("only the county office opens shops"))
    if session.scalar(select(Shop.id).where(Shop.code == code)):
        raise Conflict(_l("shop %(code)s exists", code=code))
    shop = Shop(code=code, name=name, created_at=now)
    session.add(shop)
    session.flush()
    return shop


def get_shop(session: Session, code: str) -> Shop:
    shop = session.scalar(select(Shop).where(Shop.code == code))
    if shop is None:
        raise NotFound(_l("no shop %(code)s", code=code))
    return shop


def create_product(
    session: Session,
    *,
    actor: User,
    now: datetime,
    sku: str,
    name: str,
    points_price: int,
    unit: str,
    barcode: str | None = None,
    name_en: str | None = None,
    category: str | None = None,
) -> Product:
    if not actor.is_admin:
        raise Forbidden(_l("only the county office keeps the catalogue"))
    if points_price <= 0:
        raise ValidationFailed(errors={"points_price": [_l("must be a positive whole number")]})
    if session.scalar(select(Product.id).where(Product.sku == sku)):
        raise Conflict(_l("product %(sku)s exists", sku=sku))
    product = Product(
        sku=sku,
        name=name,
        name_en=name_en,
        unit=unit,
        points_price=points_price,
        barcode=barcode,
        category=category,
        created_at=now,
    )
    session.add(product)
    session.flush()
    return product


def receive_stock(
    session: Session,
    *,
    actor: User,
    now: datetime,
    shop_code: str,
    lines: Iterable[tuple[str, int]],
    reference: str,
    idempotency_key: str,
) -> list[StockMovement]:
    """A delivery: each line adds to on-hand and is journalled as a `receipt`."""
    shop = get_shop(session, shop_code)
    if not actor.may_manage_shop(shop_code):
        raise Forbidden(_l("you may not receive goods at shop %(shop_code)s", shop_code=shop_code))
    movements = []
    for sku, qty in lines:
        if qty <= 0:
            raise ValidationFailed(errors={"qty": [_l("must be positive")]})
        product = session.scalar(select(Product).where(Product.sku == sku))
        if product is None:
            raise NotFound(_l("no product %(sku)s", sku=sku))
        movements.append(
            _move(
                session,
                shop=shop,
                product=product,
                kind=MovementKind.RECEIPT,
                quantity=qty,
                reference=reference,
                actor=actor,
                now=now,
                idempotency_key=idempotency_key,
            )
        )
    return movements


def _move(
    session: Session,
    *,
    shop: Shop,
    product: Product,
    kind: MovementKind,
    quantity: int,
    reference: str | None,
    actor: User,
    now: datetime,
    idempotency_key: str | None,
    reason: str | None = None,
) -> StockMovement:
    level = session.get(StockLevel, (shop.id, product.id))
    if level is None:
        level = StockLevel(shop_id=shop.id, product_id=product.id, on_hand=0, reorder_level=0)
        session.add(level)
        session.flush()
    stmt = (
        update(StockLevel)
        .where(StockLevel.shop_id == shop.id, StockLevel.product_id == product.id)
        .values(on_hand=StockLevel.on_hand + quantity)
        .returning(StockLevel.on_hand)
    )
    on_hand = session.execute(stmt, execution_options={"synchronize_session": False}).scalar_one()
    session.expire(level)
    movement = StockMovement(
        shop_id=shop.id,
        product_id=product.id,
        kind=kind,
        quantity=quantity,
        on_hand_after=on_hand,
        reference=reference,
        reason=reason,
        idempotency_key=idempotency_key,
        actor_id=actor.id,
        created_at=now,
    )
    session.add(movement)
    session.flush()
    return movement

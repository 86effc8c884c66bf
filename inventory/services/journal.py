"""The movement journal: how every stock operation is checked, keyed, journalled and applied.

An operation (a delivery, a sale, a count...) is one row keyed by its idempotency key;
each line moves one shop's on-hand of one product and is journalled as a movement, and
the cached on-hand moves with it in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from accounts.auth import User
from core import dialects
from core.errors import OutOfStock, UnknownProduct, ValidationFailed
from core.idempotency import replay_or_conflict, request_fingerprint
from inventory.models import (
    MovementKind,
    OperationKind,
    Product,
    Shop,
    StockCountLine,
    StockLevel,
    StockMovement,
    StockOperation,
)
from inventory.services.catalogue import ProductRef, _resolve
from inventory.services.shops import get_shop

# Far above any delivery or shelf, far below integer overflow of the on-hand column.
MAX_QUANTITY = 100_000
MAX_LINES = 500


@dataclass(frozen=True)
class _Change:
    """One line's effect on one shop's on-hand of one product."""

    shop: Shop
    product: Product
    kind: MovementKind
    quantity: int = 0
    counted: int | None = None
    reason: str | None = None


def _replay(session: Session, key: str, fingerprint: str) -> StockOperation | None:
    operation = session.scalar(select(StockOperation).where(StockOperation.idempotency_key == key))
    return replay_or_conflict(
        operation,
        recorded=operation.request_hash if operation is not None else None,
        fingerprint=fingerprint,
        key=key.partition(":")[2],
    )


def _ensure_levels(session: Session, keys: Iterable[tuple[int, int]]) -> None:
    """Create missing stock rows without a read-then-insert race (and in lock order)."""
    rows = [
        {"shop_id": shop_id, "product_id": product_id, "on_hand": 0, "reorder_level": 0}
        for shop_id, product_id in sorted(set(keys))
    ]
    if not rows:
        return
    session.execute(
        dialects.insert(session.get_bind(), StockLevel).values(rows).on_conflict_do_nothing()
    )


def _level_filter(shop_id: int, product_id: int) -> Any:
    return and_(StockLevel.shop_id == shop_id, StockLevel.product_id == product_id)


def _shift(session: Session, change: _Change, quantity: int) -> int | None:
    """Add to on-hand; None when that would go below zero and the shop does not allow it.

    On PostgreSQL the conditional UPDATE is the lock: a concurrent movement of the same
    row waits, and the condition is checked again against what it committed.
    """
    stmt = (
        update(StockLevel)
        .where(_level_filter(change.shop.id, change.product.id))
        .values(on_hand=StockLevel.on_hand + quantity)
        .returning(StockLevel.on_hand)
    )
    if quantity < 0 and not change.shop.allow_negative_stock:
        stmt = stmt.where(StockLevel.on_hand >= -quantity)
    result = session.execute(stmt, execution_options={"synchronize_session": False})
    return result.scalar_one_or_none()


def _apply(
    session: Session,
    operation: StockOperation,
    changes: Sequence[_Change],
    *,
    actor: User,
    now: datetime,
) -> StockOperation:
    """Journal every change and move cached on-hand with it; refuse all if any falls short.

    Rows are locked in one fixed order (shop, then product), so two multi-line movements
    never deadlock. A refusal raises after some rows may have moved: the caller's
    transaction rolls back, as it does for every DomainError.
    """
    ordered = sorted(changes, key=lambda c: (c.shop.id, c.product.id))
    _ensure_levels(session, ((c.shop.id, c.product.id) for c in ordered))
    short = []
    for change in ordered:
        quantity = change.quantity
        if change.counted is not None:
            expected = session.scalar(
                select(StockLevel.on_hand)
                .where(_level_filter(change.shop.id, change.product.id))
                .with_for_update()
            )
            assert expected is not None
            operation.count_lines.append(
                StockCountLine(product=change.product, expected=expected, counted=change.counted)
            )
            quantity = change.counted - expected
            if quantity == 0:
                continue
        on_hand = _shift(session, change, quantity)
        if on_hand is None:
            available = session.scalar(
                select(StockLevel.on_hand).where(_level_filter(change.shop.id, change.product.id))
            )
            short.append(
                {
                    "sku": change.product.sku,
                    "name": change.product.name,
                    "requested": -quantity,
                    "on_hand": available,
                }
            )
            continue
        operation.movements.append(
            StockMovement(
                shop_id=change.shop.id,
                product=change.product,
                kind=change.kind,
                quantity=quantity,
                on_hand_after=on_hand,
                reference=operation.reference,
                reason=change.reason,
                actor_id=actor.id,
                created_at=now,
            )
        )
    if short:
        raise OutOfStock(lines=short)
    session.flush()
    return operation


def _begin(
    session: Session,
    *,
    kind: OperationKind,
    key: str,
    fingerprint: str,
    shop: Shop,
    actor: User,
    now: datetime,
    other_shop: Shop | None = None,
    reference: str | None = None,
    supplier: str | None = None,
    note: str | None = None,
) -> StockOperation:
    # Inserted before any stock row is touched: a second request racing on the same key
    # stops here on the unique index, before it locks or moves anything.
    operation = StockOperation(
        kind=kind,
        idempotency_key=key,
        request_hash=fingerprint,
        shop=shop,
        other_shop=other_shop,
        reference=reference,
        supplier=supplier,
        note=note,
        actor_id=actor.id,
        created_at=now,
        movements=[],
        count_lines=[],
    )
    session.add(operation)
    session.flush()
    return operation


def _check_lines(lines: Sequence[Any]) -> None:
    if not 1 <= len(lines) <= MAX_LINES:
        raise ValidationFailed(
            errors={"lines": [_l("1 to %(most)s lines", most=MAX_LINES)]},
        )


def _check_quantity(name: str, value: int, *, low: int = 1, high: int = MAX_QUANTITY) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(
            errors={name: [_l("a whole number from %(low)s to %(high)s", low=low, high=high)]}
        )


def _clean(value: str | None, name: str, *, required: bool = False, most: int = 100) -> str | None:
    value = (value or "").strip() or None
    if value is None and required:
        raise ValidationFailed(errors={name: [_l("required")]})
    if value is not None and len(value) > most:
        raise ValidationFailed(errors={name: [_l("at most %(most)s characters", most=most)]})
    return value


def _simple_operation(
    session: Session,
    *,
    kind: OperationKind,
    movement: MovementKind,
    sign: int,
    actor: User,
    now: datetime,
    shop_code: str,
    lines: Iterable[tuple[ProductRef, int]],
    idempotency_key: str,
    reference: str | None,
    supplier: str | None = None,
) -> StockOperation:
    """Receipts, sales and returns: each line moves one product by a positive quantity."""
    lines = [(ref, qty) for ref, qty in lines]
    key = f"{kind}:{idempotency_key}"
    fingerprint = request_fingerprint(
        shop=shop_code, lines=lines, reference=reference, supplier=supplier
    )
    replay = _replay(session, key, fingerprint)
    if replay:
        return replay
    _check_lines(lines)
    for _ref, qty in lines:
        _check_quantity("qty", qty)
    shop = get_shop(session, shop_code)
    products = _resolve(session, (ref for ref, _qty in lines))
    if kind == OperationKind.SALE:
        inactive = [products[ref].sku for ref, _qty in lines if not products[ref].active]
        if inactive:
            raise UnknownProduct(
                _l("no longer sold: %(products)s", products=", ".join(inactive)),
                products=inactive,
            )
    operation = _begin(
        session,
        kind=kind,
        key=key,
        fingerprint=fingerprint,
        shop=shop,
        actor=actor,
        now=now,
        reference=reference,
        supplier=supplier,
    )
    changes = [_Change(shop, products[ref], movement, sign * qty) for ref, qty in lines]
    return _apply(session, operation, changes, actor=actor, now=now)

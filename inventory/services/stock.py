"""Stock operations of a shop: deliveries, sales and returns, adjustments, counts, transfers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import update
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import ValidationFailed
from core.idempotency import request_fingerprint
from inventory.models import (
    AdjustmentReason,
    MovementKind,
    OperationKind,
    StockLevel,
    StockOperation,
)
from inventory.services.catalogue import ProductRef, _resolve
from inventory.services.journal import (
    MAX_QUANTITY,
    _apply,
    _begin,
    _Change,
    _check_lines,
    _check_quantity,
    _clean,
    _ensure_levels,
    _level_filter,
    _replay,
    _simple_operation,
)
from inventory.services.reports import StockItem, list_stock
from inventory.services.shops import get_shop

# Goods leave the shop with these reasons and come in with the others.
OUTGOING_REASONS = {AdjustmentReason.DAMAGED, AdjustmentReason.EXPIRED}


def receive_stock(
    session: Session,
    *,
    actor: User,
    now: datetime,
    shop_code: str,
    lines: Iterable[tuple[str, int]],
    reference: str,
    idempotency_key: str,
    supplier: str | None = None,
) -> StockOperation:
    """A delivery: each line adds to on-hand and is journalled as a `receipt`."""
    actor.require_shop_manager(shop_code)
    return _simple_operation(
        session,
        kind=OperationKind.RECEIPT,
        movement=MovementKind.RECEIPT,
        sign=1,
        actor=actor,
        now=now,
        shop_code=shop_code,
        lines=lines,
        idempotency_key=idempotency_key,
        reference=_clean(reference, "reference", required=True),
        supplier=_clean(supplier, "supplier"),
    )


def record_stock_sale(
    session: Session,
    *,
    actor: User,
    now: datetime,
    shop_code: str,
    lines: Iterable[tuple[ProductRef, int]],
    reference: str,
    idempotency_key: str,
) -> StockOperation:
    """Goods leaving with a sale; the counter calls this inside the sale's transaction.

    Lines name products by id (int) or sku (str). Short stock raises OutOfStock and the
    sale's transaction must roll back, taking the redemption with it.
    """
    actor.require_shop_staff(shop_code)
    return _simple_operation(
        session,
        kind=OperationKind.SALE,
        movement=MovementKind.SALE,
        sign=-1,
        actor=actor,
        now=now,
        shop_code=shop_code,
        lines=lines,
        idempotency_key=idempotency_key,
        reference=_clean(reference, "reference"),
    )


def return_stock(
    session: Session,
    *,
    actor: User,
    now: datetime,
    shop_code: str,
    lines: Iterable[tuple[ProductRef, int]],
    reference: str,
    idempotency_key: str,
) -> StockOperation:
    """Goods brought back against a sale go back on the shelf as `return` movements."""
    actor.require_shop_staff(shop_code)
    return _simple_operation(
        session,
        kind=OperationKind.RETURN,
        movement=MovementKind.RETURN,
        sign=1,
        actor=actor,
        now=now,
        shop_code=shop_code,
        lines=lines,
        idempotency_key=idempotency_key,
        reference=_clean(reference, "reference"),
    )


def adjust_stock(
    session: Session,
    *,
    actor: User,
    now: datetime,
    shop_code: str,
    lines: Iterable[tuple[str, int, str]],
    idempotency_key: str,
    reference: str | None = None,
    note: str | None = None,
) -> StockOperation:
    """Damaged or expired goods out, found or donated goods in; each line with its reason."""
    actor.require_shop_manager(shop_code)
    lines = [(sku, delta, reason) for sku, delta, reason in lines]
    reference = _clean(reference, "reference")
    note = _clean(note, "note", most=500)
    key = f"{OperationKind.ADJUSTMENT}:{idempotency_key}"
    fingerprint = request_fingerprint(shop=shop_code, lines=lines, reference=reference, note=note)
    replay = _replay(session, key, fingerprint)
    if replay:
        return replay
    _check_lines(lines)
    for _sku, delta, reason in lines:
        if reason not in set(AdjustmentReason):
            raise ValidationFailed(
                errors={"reason": [_l("one of %(reasons)s", reasons=", ".join(AdjustmentReason))]}
            )
        _check_quantity("delta", delta, low=-MAX_QUANTITY)
        if (delta < 0) != (reason in OUTGOING_REASONS) or delta == 0:
            raise ValidationFailed(
                errors={
                    "delta": [
                        _l(
                            "damaged and expired goods go out (below zero); found and donated "
                            "goods come in (above zero)"
                        )
                    ]
                }
            )
    shop = get_shop(session, shop_code)
    products = _resolve(session, (sku for sku, _delta, _reason in lines))
    operation = _begin(
        session,
        kind=OperationKind.ADJUSTMENT,
        key=key,
        fingerprint=fingerprint,
        shop=shop,
        actor=actor,
        now=now,
        reference=reference,
        note=note,
    )
    changes = [
        _Change(shop, products[sku], MovementKind.ADJUSTMENT, delta, reason=reason)
        for sku, delta, reason in lines
    ]
    return _apply(session, operation, changes, actor=actor, now=now)


def count_stock(
    session: Session,
    *,
    actor: User,
    now: datetime,
    shop_code: str,
    lines: Iterable[tuple[str, int]],
    idempotency_key: str,
    reference: str | None = None,
) -> StockOperation:
    """A stock take of the lines counted: on-hand becomes the count, each variance a movement."""
    actor.require_shop_manager(shop_code)
    lines = [(sku, counted) for sku, counted in lines]
    reference = _clean(reference, "reference")
    key = f"{OperationKind.COUNT}:{idempotency_key}"
    fingerprint = request_fingerprint(shop=shop_code, lines=lines, reference=reference)
    replay = _replay(session, key, fingerprint)
    if replay:
        return replay
    _check_lines(lines)
    for _sku, counted in lines:
        _check_quantity("counted", counted, low=0)
    skus = [sku for sku, _counted in lines]
    twice = sorted({sku for sku in skus if skus.count(sku) > 1})
    if twice:
        raise ValidationFailed(
            errors={"lines": [_l("counted twice: %(skus)s", skus=", ".join(twice))]}
        )
    shop = get_shop(session, shop_code)
    products = _resolve(session, skus)
    # Two spellings of one sku (SALT, salt) are one product counted twice.
    times = Counter(products[sku].id for sku in skus)
    twice = sorted({products[sku].sku for sku in skus if times[products[sku].id] > 1})
    if twice:
        raise ValidationFailed(
            errors={"lines": [_l("counted twice: %(skus)s", skus=", ".join(twice))]}
        )
    operation = _begin(
        session,
        kind=OperationKind.COUNT,
        key=key,
        fingerprint=fingerprint,
        shop=shop,
        actor=actor,
        now=now,
        reference=reference,
    )
    changes = [
        _Change(shop, products[sku], MovementKind.COUNT, counted=counted, reason="count")
        for sku, counted in lines
    ]
    return _apply(session, operation, changes, actor=actor, now=now)


def transfer_stock(
    session: Session,
    *,
    actor: User,
    now: datetime,
    shop_code: str,
    to_shop: str,
    lines: Iterable[tuple[str, int]],
    idempotency_key: str,
    reference: str | None = None,
) -> StockOperation:
    """Goods out of this shop and into another, in one transaction."""
    actor.require_shop_manager(shop_code)
    lines = [(sku, qty) for sku, qty in lines]
    reference = _clean(reference, "reference")
    key = f"{OperationKind.TRANSFER}:{idempotency_key}"
    fingerprint = request_fingerprint(
        shop=shop_code, to_shop=to_shop, lines=lines, reference=reference
    )
    replay = _replay(session, key, fingerprint)
    if replay:
        return replay
    _check_lines(lines)
    for _sku, qty in lines:
        _check_quantity("qty", qty)
    if to_shop == shop_code:
        raise ValidationFailed(errors={"to_shop": [_l("must be another shop")]})
    shop = get_shop(session, shop_code)
    destination = get_shop(session, to_shop)
    products = _resolve(session, (sku for sku, _qty in lines))
    operation = _begin(
        session,
        kind=OperationKind.TRANSFER,
        key=key,
        fingerprint=fingerprint,
        shop=shop,
        other_shop=destination,
        actor=actor,
        now=now,
        reference=reference,
    )
    changes = []
    for sku, qty in lines:
        changes.append(_Change(shop, products[sku], MovementKind.TRANSFER_OUT, -qty))
        changes.append(_Change(destination, products[sku], MovementKind.TRANSFER_IN, qty))
    return _apply(session, operation, changes, actor=actor, now=now)


def set_reorder_levels(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    lines: Iterable[tuple[str, int]],
) -> list[StockItem]:
    """The on-hand at or below which a product is low at this shop; 0 means never low."""
    actor.require_shop_manager(shop_code)
    lines = list(lines)
    _check_lines(lines)
    for _sku, level in lines:
        _check_quantity("reorder_level", level, low=0)
    shop = get_shop(session, shop_code)
    products = _resolve(session, (sku for sku, _level in lines))
    _ensure_levels(session, ((shop.id, products[sku].id) for sku, _level in lines))
    for sku, level in lines:
        session.execute(
            update(StockLevel)
            .where(_level_filter(shop.id, products[sku].id))
            .values(reorder_level=level),
            execution_options={"synchronize_session": False},
        )
    session.flush()
    # By id: products are keyed by the spelling each line asked for.
    wanted = {product.id for product in products.values()}
    return [
        item
        for item in list_stock(session, actor=actor, shop_code=shop_code)
        if item.product.id in wanted
    ]

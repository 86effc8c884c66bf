"""The counter's stock step: the goods of a sale leave the shelf, on prebuilt statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Integer, bindparam, insert, or_, select, text, update
from sqlalchemy.orm import Session

from accounts.auth import User
from core import dialects
from core.db import UTCDateTime
from core.errors import OutOfStock
from core.idempotency import request_fingerprint
from inventory.models import MovementKind, OperationKind, StockLevel, StockMovement, StockOperation
from inventory.services.journal import (
    _check_lines,
    _check_quantity,
    _clean,
    _ensure_levels,
    _replay,
)


@dataclass(frozen=True)
class SaleStock:
    """One line of a counter sale, its product already resolved by the counter."""

    product_id: int
    sku: str
    name: str
    qty: int


_operations = StockOperation.__table__
_levels = StockLevel.__table__
_movements = StockMovement.__table__

# The counter's stock step runs on prebuilt statements (as the ledger's redemption does):
# every sale passes here, and ORM units of work cost more than the database work.
# PostgreSQL takes it as one statement. The operation row comes first (a key used before
# stops it: nothing is updated without it); the stock rows are locked in product order,
# so two sales of the same goods never deadlock; each UPDATE repeats the stock check in
# its WHERE, so a line that falls short is simply absent from the movements.
_TAKE_SALE_STOCK_PG = text(
    """
WITH op AS (
    INSERT INTO stock_operations
        (kind, idempotency_key, request_hash, shop_id, reference, actor_id, created_at)
    VALUES ('sale', :key, :request_hash, :shop_id, :reference, :actor_id, :created_at)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), want AS MATERIALIZED (
    SELECT w.product_id, w.qty
    FROM unnest(CAST(:product_ids AS integer[]), CAST(:qtys AS integer[])) AS w(product_id, qty)
), locked AS MATERIALIZED (
    SELECT sl.product_id FROM stock_levels AS sl
    WHERE sl.shop_id = :shop_id AND sl.product_id = ANY(CAST(:product_ids AS integer[]))
        AND EXISTS (SELECT 1 FROM op)
    ORDER BY sl.product_id
    FOR NO KEY UPDATE
), taken AS (
    UPDATE stock_levels AS sl SET on_hand = sl.on_hand - want.qty
    FROM want JOIN locked ON locked.product_id = want.product_id
    WHERE sl.shop_id = :shop_id AND sl.product_id = want.product_id
        AND (sl.on_hand >= want.qty OR CAST(:allow_negative AS boolean))
    RETURNING sl.product_id, sl.on_hand, want.qty
), moved AS (
    INSERT INTO stock_movements
        (operation_id, shop_id, product_id, kind, quantity, on_hand_after, reference,
         actor_id, created_at)
    SELECT op.id, :shop_id, taken.product_id, 'sale', -taken.qty, taken.on_hand, :reference,
        :actor_id, :created_at
    FROM taken CROSS JOIN op
    RETURNING product_id
)
SELECT (SELECT id FROM op), ARRAY(SELECT product_id FROM moved)
"""
).bindparams(bindparam("created_at", type_=UTCDateTime()))

# SQLite's own: bind names must differ from the columns they fill.
_INSERT_OPERATION = (
    dialects.insert_for(dialects.SQLITE)(_operations)
    .values(
        kind=OperationKind.SALE.value,
        idempotency_key=bindparam("key"),
        request_hash=bindparam("request_hash"),
        shop_id=bindparam("b_shop_id"),
        reference=bindparam("b_reference"),
        actor_id=bindparam("b_actor_id"),
        created_at=bindparam("b_created_at", type_=UTCDateTime()),
    )
    .on_conflict_do_nothing(index_elements=[_operations.c.idempotency_key])
    .returning(_operations.c.id)
)
_TAKE_ONE = (
    update(_levels)
    .where(
        _levels.c.shop_id == bindparam("b_shop_id"),
        _levels.c.product_id == bindparam("b_product_id"),
        or_(
            _levels.c.on_hand >= bindparam("qty", type_=Integer()),
            bindparam("allow_negative", type_=Boolean()),
        ),
    )
    .values(on_hand=_levels.c.on_hand - bindparam("qty", type_=Integer()))
    .returning(_levels.c.on_hand)
)
_INSERT_MOVEMENT = insert(_movements)
_ON_HAND = select(_levels.c.product_id, _levels.c.on_hand).where(
    _levels.c.shop_id == bindparam("b_shop_id"),
    _levels.c.product_id.in_(bindparam("product_ids", expanding=True)),
)


def take_sale_stock(
    session: Session,
    *,
    actor: User,
    now: datetime,
    shop_id: int,
    shop_code: str,
    allow_negative_stock: bool,
    lines: Sequence[SaleStock],
    reference: str,
    idempotency_key: str,
    offline: bool = False,
) -> int:
    """The goods of a counter sale leave the shelf; the operation's id.

    What record_stock_sale does, for a shop and products the counter has already looked
    up, with each product on one line. Short stock raises OutOfStock after some rows may
    have moved: the sale's transaction must roll back, taking the redemption with it.
    `offline`: a sale the shop's node made offline, posted by that node.
    """
    if offline:
        actor.require_shop_node(shop_code)
    else:
        actor.require_shop_staff(shop_code)
    _check_lines(lines)
    for line in lines:
        _check_quantity("qty", line.qty)
    reference_text = _clean(reference, "reference")
    key = f"{OperationKind.SALE}:{idempotency_key}"
    fingerprint = request_fingerprint(
        shop=shop_code,
        lines=[(line.product_id, line.qty) for line in lines],
        reference=reference_text,
        supplier=None,
    )
    ordered = sorted(lines, key=lambda line: line.product_id)
    if allow_negative_stock:
        # A shop that may go below zero sells goods it has no stock row for yet.
        _ensure_levels(session, ((shop_id, line.product_id) for line in ordered))
    params = {
        "key": key,
        "request_hash": fingerprint,
        "shop_id": shop_id,
        "reference": reference_text,
        "actor_id": actor.id,
        "created_at": now,
        "allow_negative": allow_negative_stock,
    }
    conn = session.connection()
    if dialects.is_postgresql(conn):
        operation_id, moved_ids = conn.execute(
            _TAKE_SALE_STOCK_PG,
            params
            | {
                "product_ids": [line.product_id for line in ordered],
                "qtys": [line.qty for line in ordered],
            },
        ).one()
        moved = set(moved_ids)
    else:
        # SQLite's IMMEDIATE transaction already holds the database: no lock order to keep.
        sqlite_params = {f"b_{name}": value for name, value in params.items()} | params
        operation_id = conn.execute(_INSERT_OPERATION, sqlite_params).scalar_one_or_none()
        moved = set()
        if operation_id is not None:
            movements = []
            for line in ordered:
                on_hand = conn.execute(
                    _TAKE_ONE,
                    sqlite_params | {"b_product_id": line.product_id, "qty": line.qty},
                ).scalar_one_or_none()
                if on_hand is None:
                    continue
                moved.add(line.product_id)
                movements.append(
                    {
                        "operation_id": operation_id,
                        "shop_id": shop_id,
                        "product_id": line.product_id,
                        "kind": MovementKind.SALE.value,
                        "quantity": -line.qty,
                        "on_hand_after": on_hand,
                        "reference": reference_text,
                        "reason": None,
                        "actor_id": actor.id,
                        "created_at": now,
                    }
                )
            if movements:
                conn.execute(_INSERT_MOVEMENT, movements)
    if operation_id is None:
        # The key was used before: the same request is answered again, another refused.
        replay = _replay(session, key, fingerprint)
        assert replay is not None
        return replay.id
    short = [line for line in ordered if line.product_id not in moved]
    if short:
        found = conn.execute(
            _ON_HAND,
            {"b_shop_id": shop_id, "product_ids": [line.product_id for line in short]},
        )
        on_hand = {product_id: level for product_id, level in found}
        raise OutOfStock(
            lines=[
                {
                    "sku": line.sku,
                    "name": line.name,
                    "requested": line.qty,
                    "on_hand": on_hand.get(line.product_id, 0),
                }
                for line in short
            ]
        )
    return int(operation_id)

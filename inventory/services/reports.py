"""Reading a shop's stock: levels, value, the movement journal, and reconciling the cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from accounts.auth import User
from core.errors import NotFound
from inventory.models import Product, Shop, StockLevel, StockMovement, StockOperation
from inventory.services.catalogue import _text_match, get_product
from inventory.services.journal import _level_filter
from inventory.services.shops import shop_for_staff


def stock_on_hand(session: Session, *, shop: Shop, product: Product) -> int:
    """What the shop holds of the product; 0 if it has never been stocked there."""
    on_hand = session.scalar(select(StockLevel.on_hand).where(_level_filter(shop.id, product.id)))
    return int(on_hand or 0)


@dataclass(frozen=True)
class StockItem:
    product: Product
    on_hand: int
    reorder_level: int

    @property
    def low(self) -> bool:
        return self.reorder_level > 0 and self.on_hand <= self.reorder_level

    @property
    def value_points(self) -> int:
        # Stock below zero (shops that allow it) owes goods; it is worth nothing.
        return max(self.on_hand, 0) * self.product.points_price


def list_stock(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    q: str = "",
    low_only: bool = False,
) -> list[StockItem]:
    """Every active product at the shop (zero if never stocked), and anything still on hand."""
    shop = shop_for_staff(session, actor=actor, code=shop_code)
    on_hand = func.coalesce(StockLevel.on_hand, 0)
    reorder_level = func.coalesce(StockLevel.reorder_level, 0)
    stmt = (
        select(Product, on_hand, reorder_level)
        .outerjoin(
            StockLevel, and_(StockLevel.product_id == Product.id, StockLevel.shop_id == shop.id)
        )
        .where(or_(Product.active.is_(True), on_hand != 0))
        .order_by(Product.sku)
    )
    q = q.strip()
    if q:
        stmt = stmt.where(_text_match(q))
    if low_only:
        stmt = stmt.where(reorder_level > 0, on_hand <= reorder_level)
    return [StockItem(p, int(h), int(r)) for p, h, r in session.execute(stmt)]


def stock_value(session: Session, *, actor: User, shop_code: str) -> int:
    """What the goods on the shelves are worth in points (negative on-hand counts as none)."""
    shop = shop_for_staff(session, actor=actor, code=shop_code)
    total = session.scalar(
        select(func.coalesce(func.sum(StockLevel.on_hand * Product.points_price), 0))
        .join(Product, Product.id == StockLevel.product_id)
        .where(StockLevel.shop_id == shop.id, StockLevel.on_hand > 0)
    )
    return int(total or 0)


def list_movements(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    sku: str | None = None,
    limit: int | None = None,
    before: int | None = None,
) -> list[StockMovement]:
    """The shop's journal, newest first, by keyset on movement id; all of it by default."""
    shop = shop_for_staff(session, actor=actor, code=shop_code)
    stmt = (
        select(StockMovement)
        .options(joinedload(StockMovement.actor), joinedload(StockMovement.operation))
        .where(StockMovement.shop_id == shop.id)
        .order_by(StockMovement.id.desc())
        .limit(limit)
    )
    if sku:
        stmt = stmt.where(StockMovement.product_id == get_product(session, sku).id)
    if before is not None:
        stmt = stmt.where(StockMovement.id < before)
    return list(session.scalars(stmt))


def other_shop_of(movement: StockMovement) -> Shop | None:
    """For a transfer movement, the shop at the other end."""
    operation = movement.operation
    if operation.other_shop is None:
        return None
    return operation.other_shop if operation.shop_id == movement.shop_id else operation.shop


def get_operation(
    session: Session, *, actor: User, shop_code: str, operation_id: int
) -> StockOperation:
    shop = shop_for_staff(session, actor=actor, code=shop_code)
    operation = session.get(StockOperation, operation_id)
    if operation is None or shop.id not in (operation.shop_id, operation.other_shop_id):
        raise NotFound(_l("no stock operation %(id)s at this shop", id=operation_id))
    return operation


@dataclass(frozen=True)
class Difference:
    sku: str
    name: str
    cached: int
    journal: int

    @property
    def difference(self) -> int:
        return self.cached - self.journal


@dataclass
class ReconcileReport:
    shop_code: str
    products_checked: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def reconcile_stock(session: Session, *, actor: User, shop_code: str) -> ReconcileReport:
    """Recompute each product's on-hand from the journal and compare it with the cache."""
    shop = shop_for_staff(session, actor=actor, code=shop_code)
    journal = {
        product_id: int(total)
        for product_id, total in session.execute(
            select(StockMovement.product_id, func.sum(StockMovement.quantity))
            .where(StockMovement.shop_id == shop.id)
            .group_by(StockMovement.product_id)
        )
    }
    cached = {
        product_id: on_hand
        for product_id, on_hand in session.execute(
            select(StockLevel.product_id, StockLevel.on_hand).where(StockLevel.shop_id == shop.id)
        )
    }
    product_ids = set(journal) | set(cached)
    bad = sorted(pid for pid in product_ids if cached.get(pid, 0) != journal.get(pid, 0))
    report = ReconcileReport(shop_code=shop.code, products_checked=len(product_ids))
    if bad:
        names = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(bad)))}
        report.differences = [
            Difference(
                sku=names[pid].sku,
                name=names[pid].name,
                cached=cached.get(pid, 0),
                journal=journal.get(pid, 0),
            )
            for pid in bad
        ]
    return report

"""Reading a shop's stock: levels, value, the movement journal, and reconciling the cache."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.orm import Session, joinedload

from accounts.auth import User
from core.errors import NotFound
from inventory.models import Product, Shop, StockLevel, StockMovement, StockOperation
from inventory.services.catalogue import _resolve, _text_match, get_product
from inventory.services.journal import _check_lines, _check_quantity, _level_filter
from inventory.services.shops import shop_for_manager, shop_for_staff


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


class JournalLine:
    """A movement as the journal lists it, with its on-hand counted in the journal's order.

    Everything else is the movement's own. The stored `on_hand_after` is the on-hand when
    the movement was posted; a sale dated earlier than goods received before it (an
    offline sale synced later) would make that column jump in a list ordered by time.
    """

    __slots__ = ("movement", "on_hand_after")

    def __init__(self, movement: StockMovement, on_hand_after: int) -> None:
        self.movement = movement
        self.on_hand_after = on_hand_after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.movement, name)


def list_movements(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    sku: str | None = None,
    limit: int | None = None,
    before: int | None = None,
) -> list[JournalLine]:
    """The shop's journal, newest first by time (then id); all of it by default.

    `before` is the id of the last line of the previous page.
    """
    shop = shop_for_staff(session, actor=actor, code=shop_code)
    here = StockMovement.shop_id == shop.id
    if sku:
        here = and_(here, StockMovement.product_id == get_product(session, sku).id)
    stmt = (
        select(StockMovement)
        .options(joinedload(StockMovement.actor), joinedload(StockMovement.operation))
        .where(here)
        .order_by(StockMovement.created_at.desc(), StockMovement.id.desc())
        .limit(limit)
    )
    newer = None
    if before is not None:
        at = session.scalar(
            select(StockMovement.created_at).where(here, StockMovement.id == before)
        )
        if at is None:
            # Not a line of this journal (a hand-made cursor): older by id, as ids run.
            older = StockMovement.id < before
        else:
            older = or_(
                StockMovement.created_at < at,
                and_(StockMovement.created_at == at, StockMovement.id < before),
            )
        stmt = stmt.where(older)
        newer = not_(older)
    movements = list(session.scalars(stmt))
    return _with_running_on_hand(session, shop.id, movements, newer)


def _with_running_on_hand(
    session: Session, shop_id: int, movements: list[StockMovement], newer: Any
) -> list[JournalLine]:
    """Each product's on-hand after each line, counted back from the journal's sum now."""
    products = {m.product_id for m in movements}
    if not products:
        return []
    columns = [StockMovement.product_id, func.sum(StockMovement.quantity)]
    if newer is not None:
        # What moved after the previous page's last line is not on this page's lines.
        columns.append(func.sum(case((newer, StockMovement.quantity), else_=0)))
    on_hand: dict[int, int] = {}
    for product_id, total, *after in session.execute(
        select(*columns)
        .where(StockMovement.shop_id == shop_id, StockMovement.product_id.in_(products))
        .group_by(StockMovement.product_id)
    ):
        on_hand[product_id] = int(total or 0) - (int(after[0] or 0) if after else 0)
    lines = []
    for movement in movements:
        lines.append(JournalLine(movement, on_hand[movement.product_id]))
        on_hand[movement.product_id] -= movement.quantity
    return lines


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


@dataclass(frozen=True)
class CountLine:
    """One line of a stock take before it is saved: what the books say and what was counted."""

    product: Product
    expected: int
    counted: int

    @property
    def delta(self) -> int:
        return self.counted - self.expected


def count_preview(
    session: Session, *, actor: User, shop_code: str, lines: Iterable[tuple[str, int]]
) -> list[CountLine]:
    """A stock take's lines against the books, in the order given, before anything is saved.

    So a person sees the differences a count would record and confirms them first.
    Unknown goods are refused here as count_stock would refuse them.
    """
    shop = shop_for_manager(session, actor=actor, code=shop_code)
    lines = list(lines)
    # What count_stock would refuse is refused before it is shown for confirming.
    _check_lines(lines)
    for _sku, counted in lines:
        _check_quantity("counted", counted, low=0)
    products = _resolve(session, [sku for sku, _counted in lines])
    ids = {product.id for product in products.values()}
    books = dict(
        session.execute(
            select(StockLevel.product_id, StockLevel.on_hand).where(
                StockLevel.shop_id == shop.id, StockLevel.product_id.in_(ids)
            )
        ).all()
    )
    return [
        CountLine(products[sku], int(books.get(products[sku].id, 0)), counted)
        for sku, counted in lines
    ]

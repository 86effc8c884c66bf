"""Inventory operations. Each takes the session, the acting user and the time; none commits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    Integer,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from core.db import UTCDateTime
from core.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    NotFound,
    OutOfStock,
    UnknownProduct,
    ValidationFailed,
)
from core.idempotency import request_fingerprint
from core.scanned import normalize_scanned
from inventory.barcodes import barcode_problem, in_store_code, in_store_serial, is_in_store
from inventory.models import (
    AdjustmentReason,
    InStoreBarcode,
    MovementKind,
    OperationKind,
    Product,
    Shop,
    StockCountLine,
    StockLevel,
    StockMovement,
    StockOperation,
)

if TYPE_CHECKING:
    from accounts.auth import User

# Far above any delivery or shelf, far below integer overflow of the on-hand column.
MAX_QUANTITY = 100_000
MAX_LINES = 500
MAX_POINTS_PRICE = 1_000_000
# Goods leave the shop with these reasons and come in with the others.
OUTGOING_REASONS = {AdjustmentReason.DAMAGED, AdjustmentReason.EXPIRED}

ProductRef = str | int
# The columns' widths: a longer scan cannot be in the catalogue, so it is never looked up.
SKU_CHARS = 32
BARCODE_CHARS = 13


# --- scope --------------------------------------------------------------------------


def _require_staff(actor: User, shop_code: str) -> None:
    if not actor.may_sell_at(shop_code):
        raise Forbidden(_l("you may not act for shop %(shop_code)s", shop_code=shop_code))


def _require_manager(actor: User, shop_code: str) -> None:
    if not actor.may_manage_shop(shop_code):
        raise Forbidden(_l("only a manager of shop %(shop_code)s may do this", shop_code=shop_code))


def _require_admin(actor: User, message: Any) -> None:
    if not actor.is_admin:
        raise Forbidden(message)


# --- shops --------------------------------------------------------------------------


def create_shop(
    session: Session,
    *,
    actor: User,
    now: datetime,
    code: str,
    name: str,
    allow_negative_stock: bool = False,
) -> Shop:
    _require_admin(actor, _l("only the county office opens shops"))
    if session.scalar(select(Shop.id).where(Shop.code == code)):
        raise Conflict(_l("shop %(code)s exists", code=code))
    shop = Shop(code=code, name=name, allow_negative_stock=allow_negative_stock, created_at=now)
    session.add(shop)
    session.flush()
    return shop


def update_shop(
    session: Session,
    *,
    actor: User,
    code: str,
    name: str | None = None,
    allow_negative_stock: bool | None = None,
) -> Shop:
    _require_admin(actor, _l("only the county office changes a shop's settings"))
    shop = get_shop(session, code)
    if name is not None:
        shop.name = name
    if allow_negative_stock is not None:
        shop.allow_negative_stock = allow_negative_stock
    session.flush()
    return shop


def get_shop(session: Session, code: str) -> Shop:
    shop = session.scalar(select(Shop).where(Shop.code == code))
    if shop is None:
        raise NotFound(_l("no shop %(code)s", code=code))
    return shop


def list_shops(session: Session) -> Sequence[Shop]:
    return session.scalars(select(Shop).order_by(Shop.code)).all()


def shop_for_staff(session: Session, *, actor: User, code: str) -> Shop:
    """The shop, if the actor works there (or is the county office)."""
    _require_staff(actor, code)
    return get_shop(session, code)


def shop_for_manager(session: Session, *, actor: User, code: str) -> Shop:
    """The shop, if the actor manages it (or is the county office)."""
    _require_manager(actor, code)
    return get_shop(session, code)


# --- catalogue ----------------------------------------------------------------------


def _check_barcode(session: Session, barcode: str, product_id: int | None) -> None:
    problem = barcode_problem(barcode)
    if problem is not None:
        raise ValidationFailed(
            _l("%(barcode)s is not a valid EAN-13 or EAN-8 barcode", barcode=barcode[:20]),
            errors={"barcode": [problem]},
        )
    holder = session.scalar(
        select(Product.sku).where(Product.barcode == barcode, Product.id != product_id)
    )
    if holder is not None:
        raise Conflict(
            _l("barcode %(barcode)s belongs to product %(sku)s", barcode=barcode, sku=holder)
        )
    if is_in_store(barcode):
        owner = session.scalar(
            select(InStoreBarcode.product_id).where(InStoreBarcode.code == barcode)
        )
        if owner is not None and owner != product_id:
            raise Conflict(
                _l(
                    "in-store barcode %(barcode)s was given to another product once "
                    "and is never reused",
                    barcode=barcode,
                )
            )


def _next_in_store_code(session: Session) -> str:
    # Past the highest code ever given, never a gap: old labels keep their meaning.
    highest = session.scalar(select(func.max(InStoreBarcode.code)))
    return in_store_code(in_store_serial(highest) + 1 if highest else 1)


def _remember_in_store(session: Session, product: Product, now: datetime) -> None:
    if product.barcode is None or not is_in_store(product.barcode):
        return
    if session.get(InStoreBarcode, product.barcode) is None:
        session.add(InStoreBarcode(code=product.barcode, product_id=product.id, allocated_at=now))
        session.flush()


def _check_price(points_price: int) -> None:
    if not 0 < points_price <= MAX_POINTS_PRICE:
        raise ValidationFailed(
            errors={
                "points_price": [
                    _l("must be a whole number from 1 to %(most)s", most=MAX_POINTS_PRICE)
                ]
            }
        )


def _required_text(name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise ValidationFailed(errors={name: [_l("required")]})
    return value


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
    active: bool = True,
) -> Product:
    """A catalogue entry; without a manufacturer barcode it gets the next in-store EAN-13."""
    _require_admin(actor, _l("only the county office keeps the catalogue"))
    sku = _required_text("sku", sku)
    _check_price(points_price)
    if session.scalar(select(Product.id).where(Product.sku == sku)):
        raise Conflict(_l("product %(sku)s exists", sku=sku))
    if barcode:
        _check_barcode(session, barcode, None)
    product = Product(
        sku=sku,
        name=_required_text("name", name),
        name_en=(name_en or "").strip() or None,
        unit=_required_text("unit", unit),
        points_price=points_price,
        barcode=barcode or _next_in_store_code(session),
        category=(category or "").strip() or None,
        active=active,
        created_at=now,
    )
    session.add(product)
    session.flush()
    _remember_in_store(session, product, now)
    return product


def update_product(
    session: Session,
    *,
    actor: User,
    now: datetime,
    sku: str,
    name: str | None = None,
    name_en: str | None = None,
    unit: str | None = None,
    points_price: int | None = None,
    category: str | None = None,
    barcode: str | None = None,
    active: bool | None = None,
) -> Product:
    """Change a catalogue entry. A barcode is replaced, never removed; sku never changes."""
    _require_admin(actor, _l("only the county office keeps the catalogue"))
    product = get_product(session, sku)
    if name is not None:
        product.name = _required_text("name", name)
    if name_en is not None:
        product.name_en = name_en.strip() or None
    if unit is not None:
        product.unit = _required_text("unit", unit)
    if points_price is not None:
        _check_price(points_price)
        product.points_price = points_price
    if category is not None:
        product.category = category.strip() or None
    if active is not None:
        product.active = active
    if barcode is not None and barcode != product.barcode:
        _check_barcode(session, barcode, product.id)
        product.barcode = barcode
    session.flush()
    _remember_in_store(session, product, now)
    return product


def _lookup_text(value: str, most: int) -> str | None:
    """A scanned or typed code as it is looked up, or None if nothing could match it.

    Junk (too long, NUL, unpaired surrogates, control characters inside) is not sent to
    the database at all: PostgreSQL refuses some of it, and none of it is a code.
    """
    spelled = normalize_scanned(value)
    if not 0 < len(spelled) <= most or not spelled.isprintable():
        return None
    return spelled


def sku_spellings(sku: str) -> tuple[str, ...]:
    """The spellings a typed sku is looked up by, the first found winning.

    As typed, then in upper case: skus may hold lower case, so the exact spelling comes
    first, but the catalogue's are upper case by custom and a keyboard or scanner with
    Caps Lock on types them in lower case.
    """
    upper = sku.upper()
    return (sku,) if upper == sku else (sku, upper)


def _first_spelling(found: dict[str, Product], sku: str) -> Product | None:
    return next((found[s] for s in sku_spellings(sku) if s in found), None)


def get_product(session: Session, sku: str) -> Product:
    spelled = _lookup_text(sku, SKU_CHARS)
    product = None
    if spelled is not None:
        spellings = sku_spellings(spelled)
        found = {
            p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(spellings)))
        }
        product = _first_spelling(found, spelled)
    if product is None:
        raise UnknownProduct(_l("no product %(sku)s", sku=sku[:SKU_CHARS]))
    return product


def product_by_barcode(session: Session, barcode: str) -> Product:
    """The scan at the counter or the receiving desk: one indexed look-up."""
    spelled = _lookup_text(barcode, BARCODE_CHARS)
    product = None
    if spelled is not None:
        product = session.scalar(select(Product).where(Product.barcode == spelled))
    if product is None:
        raise UnknownProduct(_l("no product has barcode %(barcode)s", barcode=barcode[:20]))
    return product


def product_by_code(session: Session, code: str) -> Product:
    """A scanned or typed code: a barcode, else a sku; one look-up for both.

    A barcode wins over a sku spelled the same, as the scanner's reading is the usual one.
    """
    spelled = _lookup_text(code, SKU_CHARS)
    product = None
    if spelled is not None:
        spellings = sku_spellings(spelled)
        rows = session.scalars(
            select(Product).where(or_(Product.barcode == spelled, Product.sku.in_(spellings)))
        ).all()
        product = next((p for p in rows if p.barcode == spelled), None)
        product = product or _first_spelling({p.sku: p for p in rows}, spelled)
    if product is None:
        shown = spelled or code[:SKU_CHARS]
        raise UnknownProduct(
            _l("no product has barcode or SKU %(code)s", code=shown), products=[shown]
        )
    return product


def stock_on_hand(session: Session, *, shop: Shop, product: Product) -> int:
    """What the shop holds of the product; 0 if it has never been stocked there."""
    on_hand = session.scalar(select(StockLevel.on_hand).where(_level_filter(shop.id, product.id)))
    return int(on_hand or 0)


def products_by_sku(session: Session, skus: Iterable[str]) -> dict[str, Product]:
    """The products of the skus given, each under the spelling it was asked for."""
    texts = {sku: _lookup_text(sku, SKU_CHARS) for sku in set(skus)}
    wanted = {s for spelled in texts.values() if spelled for s in sku_spellings(spelled)}
    if not wanted:
        return {}
    found = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(wanted)))}
    products = {}
    for sku, spelled in texts.items():
        product = _first_spelling(found, spelled) if spelled else None
        if product is not None:
            products[sku] = product
    return products


def products_in_order(session: Session, skus: Sequence[str]) -> list[Product]:
    """The products named, in the order (and as often) as named; unknown ones refused."""
    found = _resolve(session, skus)
    return [found[sku] for sku in skus]


def _text_match(q: str) -> Any:
    # Codes are matched as scanned text is read (NFKC); names as typed too, since NFKC
    # would turn a name's full-width brackets （） into ones the stored name does not have.
    clauses = [
        Product.name.contains(q, autoescape=True),
        Product.name_en.contains(q, autoescape=True),
    ]
    code = normalize_scanned(q)
    if code:
        clauses += [
            Product.sku.contains(code, autoescape=True),
            Product.sku.contains(code.upper(), autoescape=True),
            Product.name.contains(code, autoescape=True),
            Product.name_en.contains(code, autoescape=True),
            Product.barcode == code,
        ]
    return or_(*clauses)


def search_products(
    session: Session,
    *,
    q: str = "",
    category: str | None = None,
    active: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[Sequence[Product], int]:
    stmt = select(Product)
    q = q.strip()
    if q:
        stmt = stmt.where(_text_match(q))
    if category:
        stmt = stmt.where(Product.category == category)
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Product.sku).limit(limit).offset(offset)).all()
    return rows, total


def _resolve(session: Session, refs: Iterable[ProductRef]) -> dict[ProductRef, Product]:
    """Products by sku (str) or id (int) in one query; every unknown one named at once.

    Each is found under the ref it was asked by; a sku is looked up as get_product does.
    """
    refs = list(refs)
    texts = {r: _lookup_text(r, SKU_CHARS) for r in refs if isinstance(r, str)}
    skus = {s for spelled in texts.values() if spelled for s in sku_spellings(spelled)}
    ids = {r for r in refs if isinstance(r, int)}
    clauses = []
    if skus:
        clauses.append(Product.sku.in_(skus))
    if ids:
        clauses.append(Product.id.in_(ids))
    by_sku: dict[str, Product] = {}
    by_id: dict[int, Product] = {}
    if clauses:
        for product in session.scalars(select(Product).where(or_(*clauses))):
            by_sku[product.sku] = product
            by_id[product.id] = product
    found: dict[ProductRef, Product] = {}
    for ref in refs:
        if isinstance(ref, str):
            spelled = texts[ref]
            product = _first_spelling(by_sku, spelled) if spelled else None
        else:
            product = by_id.get(ref)
        if product is not None:
            found[ref] = product
    unknown = [str(r) for r in dict.fromkeys(refs) if r not in found]
    if unknown:
        raise UnknownProduct(
            _l("unknown products: %(products)s", products=", ".join(unknown)), products=unknown
        )
    return found


# --- the journal --------------------------------------------------------------------


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
    if operation is None:
        return None
    if operation.request_hash != fingerprint:
        raise IdempotencyConflict(
            _l("idempotency key %(key)s was used for a different request", key=key.split(":", 1)[1])
        )
    return operation


def _ensure_levels(session: Session, keys: Iterable[tuple[int, int]]) -> None:
    """Create missing stock rows without a read-then-insert race (and in lock order)."""
    rows = [
        {"shop_id": shop_id, "product_id": product_id, "on_hand": 0, "reorder_level": 0}
        for shop_id, product_id in sorted(set(keys))
    ]
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(StockLevel).values(rows).on_conflict_do_nothing())


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
    _require_manager(actor, shop_code)
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
    _require_staff(actor, shop_code)
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
    sqlite.insert(_operations)
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
) -> int:
    """The goods of a counter sale leave the shelf; the operation's id.

    What record_stock_sale does, for a shop and products the counter has already looked
    up, with each product on one line. Short stock raises OutOfStock after some rows may
    have moved: the sale's transaction must roll back, taking the redemption with it.
    """
    _require_staff(actor, shop_code)
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
    if conn.dialect.name == "postgresql":
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
    _require_staff(actor, shop_code)
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
    _require_manager(actor, shop_code)
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
    _require_manager(actor, shop_code)
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
    _require_manager(actor, shop_code)
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


# --- reorder levels and reading -----------------------------------------------------


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


def set_reorder_levels(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    lines: Iterable[tuple[str, int]],
) -> list[StockItem]:
    """The on-hand at or below which a product is low at this shop; 0 means never low."""
    _require_manager(actor, shop_code)
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

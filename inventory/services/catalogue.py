"""The goods catalogue: products, their barcodes (bought or in-store), and finding them by scan."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, UnknownProduct, ValidationFailed
from core.scanned import normalize_scanned
from inventory.barcodes import barcode_problem, in_store_code, in_store_serial, is_in_store
from inventory.models import InStoreBarcode, Product

MAX_POINTS_PRICE = 1_000_000

ProductRef = str | int
# The columns' widths: a longer scan cannot be in the catalogue, so it is never looked up.
SKU_CHARS = 32
BARCODE_CHARS = 13


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
    actor.require_admin(_l("only the county office keeps the catalogue"))
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
    actor.require_admin(_l("only the county office keeps the catalogue"))
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

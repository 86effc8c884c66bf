"""Selling: one sale is its redemption, its stock movements and its receipt number, or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, insert, or_, select, text
from sqlalchemy.orm import Session, make_transient_to_detached

from accounts.auth import User
from core import dialects
from core.errors import Conflict, InsufficientPoints, NotFound, UnknownProduct, ValidationFailed
from core.idempotency import replay_or_conflict, request_fingerprint
from core.scanned import normalize_code, normalize_scanned
from core.timeutil import business_day
from inventory import services as inventory
from inventory.models import Product, Shop
from ledger import services as ledger
from member_cards import services as cards
from member_cards.signing import Keyring
from pos.models import ReceiptCounter, Sale, SaleLine, SaleStatus
from pos.services.limits import check_lines, check_quantity


@dataclass(frozen=True)
class LineRequest:
    """One line as the counter sent it: a product by sku or by barcode, and a quantity."""

    qty: int
    sku: str | None = None
    barcode: str | None = None


@dataclass(frozen=True)
class OfflineSale:
    """A sale the shop's node made while its line was down, as it reaches the county.

    It keeps its own receipt number, time and sequence; its points come out of the
    allowance the county held back for the node (ledger.SpendMode.OFFLINE), and its goods
    leave the stock even below zero: they left the shelf long ago.
    """

    receipt_no: str
    made_at: datetime
    seq: int


@dataclass(frozen=True)
class Forgiven:
    """What an offline sale broke that the county let pass: the goods had left the shop.

    `shortfall`: points the household could not cover even down to zero (not charged);
    `settled`: the allowance did not cover it, so it was charged down to zero instead;
    `inactive`: skus the county no longer sells; `household_inactive`: the household was
    deactivated meanwhile.
    """

    settled: bool = False
    shortfall: int = 0
    inactive: tuple[str, ...] = ()
    household_inactive: bool = False
    # The household's home shop is not this shop (or has no node): no allowance was its.
    foreign: bool = False

    def __bool__(self) -> bool:
        return self.settled or bool(self.shortfall or self.inactive) or self.household_inactive


@dataclass(frozen=True)
class SaleLineView:
    sku: str
    name: str
    qty: int
    points_each: int
    points: int


@dataclass(frozen=True)
class SaleView:
    """A sale as the counter's answer shows it, copied out before the edge commits.

    Commit expires ORM rows; answering from them would cost three more queries per sale.
    """

    id: int
    receipt_no: str
    shop_code: str
    household_id: int
    total_points: int
    balance_after: int
    lines: list[SaleLineView]
    offline: bool = False

    @classmethod
    def of(cls, sale: Sale) -> SaleView:
        return cls(
            id=sale.id,
            receipt_no=sale.receipt_no,
            shop_code=sale.shop_code,
            household_id=sale.household_id,
            total_points=sale.total_points,
            balance_after=sale.balance_after,
            lines=[
                SaleLineView(line.sku, line.name, line.qty, line.points_each, line.points)
                for line in sale.lines
            ],
            offline=bool(sale.offline),
        )


class SaleResult:
    """A sale made or replayed: its answer, and its ORM row only if someone asks for it.

    A new sale is inserted by Core statements and answered from what they wrote; loading
    the row back would cost the checkout two more queries.
    """

    def __init__(
        self,
        session: Session,
        sale_id: int,
        *,
        replayed: bool,
        view: SaleView | None = None,
        sale: Sale | None = None,
        forgiven: Forgiven | None = None,
    ) -> None:
        self.sale_id = sale_id
        self.replayed = replayed
        self.forgiven = forgiven or Forgiven()
        self._session = session
        self._view = view
        self._sale = sale

    @property
    def sale(self) -> Sale:
        if self._sale is None:
            sale = self._session.get(Sale, self.sale_id)
            assert sale is not None
            self._sale = sale
        return self._sale

    @property
    def view(self) -> SaleView:
        if self._view is None:
            self._view = SaleView.of(self.sale)
        return self._view


def receipt_number(shop_code: str, day: date, seq: int) -> str:
    return f"{shop_code}-{day:%Y%m%d}-{seq:04d}"


# The sale's own statements, prebuilt (as the ledger's redemption is): every checkout runs
# them, and building ORM expressions and flushing a unit of work per sale cost more CPU
# than the database work itself (bench/checkout.py).
_sales = Sale.__table__
_sale_lines = SaleLine.__table__
_counters = ReceiptCounter.__table__
_products = Product.__table__
_shops = Shop.__table__

# The shop, and a sale already made with this key, in one round trip.
_SHOP_AND_REPLAY = select(
    select(_shops.c.id).where(_shops.c.code == bindparam("code")).scalar_subquery(),
    select(_shops.c.allow_negative_stock)
    .where(_shops.c.code == bindparam("code"))
    .scalar_subquery(),
    select(_sales.c.id).where(_sales.c.idempotency_key == bindparam("key")).scalar_subquery(),
    select(_sales.c.request_hash)
    .where(_sales.c.idempotency_key == bindparam("key"))
    .scalar_subquery(),
)


def _next_seq_statement(dialect: str) -> Any:
    return (
        dialects.insert_for(dialect)(_counters)
        .values(shop_id=bindparam("b_shop_id"), business_day=bindparam("b_day"), last_seq=1)
        .on_conflict_do_update(
            index_elements=[_counters.c.shop_id, _counters.c.business_day],
            set_={"last_seq": _counters.c.last_seq + 1},
        )
        .returning(_counters.c.last_seq)
    )


_NEXT_SEQ = {name: _next_seq_statement(name) for name in dialects.SUPPORTED}

_PRODUCT_COLUMNS = (
    _products.c.id,
    _products.c.sku,
    _products.c.name,
    _products.c.points_price,
    _products.c.active,
    _products.c.barcode,
)
# Scanned barcodes and typed skus of one cart in one look-up.
_PRODUCTS_BY_REF = select(*_PRODUCT_COLUMNS).where(
    or_(
        _products.c.sku.in_(bindparam("skus", expanding=True)),
        _products.c.barcode.in_(bindparam("barcodes", expanding=True)),
    )
)

_SALE_COLUMNS = (
    "shop_id",
    "shop_code",
    "receipt_no",
    "business_day",
    "seq",
    "household_id",
    "card_id",
    "total_points",
    "balance_after",
    "status",
    "idempotency_key",
    "request_hash",
    "clerk_id",
    "created_at",
    "offline",
)
_INSERT_SALE = (
    insert(_sales)
    .values({name: bindparam(f"b_{name}", type_=_sales.c[name].type) for name in _SALE_COLUMNS})
    .returning(_sales.c.id)
)
_INSERT_SALE_LINE = insert(_sale_lines)
# PostgreSQL: the sale and its lines in one statement (a data-modifying CTE).
_INSERT_SALE_WITH_LINES_PG = text(
    f"""
WITH sale AS (
    INSERT INTO sales ({", ".join(_SALE_COLUMNS)})
    VALUES ({", ".join(f":b_{name}" for name in _SALE_COLUMNS)})
    RETURNING id
), line AS (
    INSERT INTO sale_lines
        (sale_id, "position", product_id, sku, name, qty, points_each, points)
    SELECT sale.id, l.pos - 1, l.product_id, l.sku, l.name, l.qty, l.points_each,
        l.qty * l.points_each
    FROM sale CROSS JOIN unnest(
        CAST(:product_ids AS integer[]), CAST(:skus AS text[]), CAST(:names AS text[]),
        CAST(:qtys AS integer[]), CAST(:prices AS integer[])
    ) WITH ORDINALITY AS l(product_id, sku, name, qty, points_each, pos)
)
SELECT id FROM sale
"""
).bindparams(bindparam("b_created_at", type_=_sales.c.created_at.type))


@dataclass(frozen=True)
class _Product:
    """The columns of a product a sale needs; never cached: prices change."""

    id: int
    sku: str
    name: str
    points_price: int
    active: bool
    barcode: str | None


def _next_receipt_seq(session: Session, shop_id: int, day: date) -> int:
    """The shop's next number for the day, in the sale's own transaction.

    The upsert locks the shop's counter row until the sale commits, so numbers are
    gapless and sequential: a refused sale rolls its number back with everything else.
    """
    conn = session.connection()
    stmt = _NEXT_SEQ[dialects.name_of(conn)]
    return int(conn.execute(stmt, {"b_shop_id": shop_id, "b_day": day}).scalar_one())


def _read_line(line: LineRequest) -> LineRequest:
    """The line with its sku or barcode read as a scan is (see core.scanned)."""
    return LineRequest(
        qty=line.qty,
        sku=None if line.sku is None else normalize_scanned(line.sku),
        barcode=None if line.barcode is None else normalize_scanned(line.barcode),
    )


def _products_for(
    session: Session, lines: Sequence[LineRequest], *, allow_inactive: bool = False
) -> list[_Product]:
    """Each line's product, by sku (as inventory spells it) or barcode; unknowns named at once.

    `allow_inactive`: an offline sale's goods left the shelf while the county still sold
    them, or before the node heard it stopped; they are sold all the same.
    """
    skus = {s for line in lines if line.sku is not None for s in inventory.sku_spellings(line.sku)}
    barcodes = {line.barcode for line in lines if line.barcode is not None}
    conn = session.connection()
    by_sku: dict[str, _Product] = {}
    by_barcode: dict[str, _Product] = {}
    for row in conn.execute(_PRODUCTS_BY_REF, {"skus": list(skus), "barcodes": list(barcodes)}):
        product = _Product(*row)
        if row.sku in skus:
            by_sku[row.sku] = product
        if row.barcode in barcodes:
            by_barcode[row.barcode] = product
    found: list[_Product] = []
    unknown: list[str] = []
    for line in lines:
        if line.sku is not None:
            spellings = inventory.sku_spellings(line.sku)
            product = next((by_sku[s] for s in spellings if s in by_sku), None)
        else:
            product = by_barcode.get(line.barcode or "")
        if product is None:
            unknown.append(str(line.sku if line.sku is not None else line.barcode)[:32])
        else:
            found.append(product)
    if unknown:
        raise UnknownProduct(
            _l("unknown products: %(products)s", products=", ".join(dict.fromkeys(unknown))),
            products=list(dict.fromkeys(unknown)),
        )
    inactive = [p.sku for p in dict.fromkeys(found) if not p.active]
    if inactive and not allow_inactive:
        raise UnknownProduct(
            _l("no longer sold: %(products)s", products=", ".join(inactive)), products=inactive
        )
    return found


def _insert_sale(
    session: Session,
    sale: dict[str, Any],
    lines: Sequence[SaleLineView],
    product_ids: Sequence[int],
) -> int:
    """Insert the sale and its lines; the sale's id."""
    conn = session.connection()
    params = {f"b_{name}": value for name, value in sale.items()}
    if dialects.is_postgresql(conn):
        return int(
            conn.execute(
                _INSERT_SALE_WITH_LINES_PG,
                params
                | {
                    "product_ids": list(product_ids),
                    "skus": [line.sku for line in lines],
                    "names": [line.name for line in lines],
                    "qtys": [line.qty for line in lines],
                    "prices": [line.points_each for line in lines],
                },
            ).scalar_one()
        )
    sale_id = int(conn.execute(_INSERT_SALE, params).scalar_one())
    conn.execute(
        _INSERT_SALE_LINE,
        [
            {
                "sale_id": sale_id,
                "position": position,
                "product_id": product_id,
                "sku": line.sku,
                "name": line.name,
                "qty": line.qty,
                "points_each": line.points_each,
                "points": line.points,
            }
            for position, (line, product_id) in enumerate(zip(lines, product_ids, strict=True))
        ],
    )
    return sale_id


def record_sale(
    session: Session,
    *,
    actor: User,
    now: datetime,
    tz: ZoneInfo,
    keyring: Keyring,
    shop_code: str,
    lines: Sequence[LineRequest],
    idempotency_key: str,
    card_payload: str | None = None,
    household_id: int | None = None,
    offline: OfflineSale | None = None,
    allowance_cap: int = ledger.DEFAULT_OFFLINE_ALLOWANCE,
    via_node: bool = False,
) -> SaleResult:
    """Sell: the sale, its redemption and its stock movements, all in the caller's transaction.

    Any refusal raises a DomainError after some rows may have been written; the edge
    rolls the whole transaction back, so points, goods and the sale move together or not
    at all. Repeated lines of one product merge into one.

    Locks are taken in one order, the household's account, the shop's receipt counter,
    then its stock rows by product, so concurrent sales queue but never deadlock.

    `allowance_cap` is the setting OFFLINE_ALLOWANCE_POINTS: what the county keeps back for
    a household's home shop node. `offline`: the sale is a node's offline sale (only that
    node posts it; see OfflineSale); what it breaks is let pass and told in the result's
    `forgiven` (the goods have left the shop). `via_node`: the home shop's own node passed
    the sale through, so it may spend the reserve held for that node (ledger.SpendMode).
    """
    if offline is not None:
        actor.require_shop_node(shop_code)
    else:
        actor.require_shop_staff(shop_code)
    # Read as scans are before the fingerprint: the same sale typed another way is the same.
    lines = [_read_line(line) for line in lines]
    if card_payload is not None:
        card_payload = normalize_code(card_payload)
    fingerprint = request_fingerprint(
        shop=shop_code,
        card_payload=card_payload,
        household_id=household_id,
        lines=[[line.sku, line.barcode, line.qty] for line in lines],
    )
    shop_id, allow_negative_stock, replay_id, replay_hash = (
        session.connection()
        .execute(_SHOP_AND_REPLAY, {"code": shop_code, "key": idempotency_key})
        .one()
    )
    if replay_id is not None:
        replay_or_conflict(
            replay_id, recorded=replay_hash, fingerprint=fingerprint, key=idempotency_key
        )
        return SaleResult(session, replay_id, replayed=True)
    if (card_payload is None) == (household_id is None):
        raise ValidationFailed(
            errors={"card_payload": [_l("give either a card payload or a household id")]}
        )
    check_lines(lines)
    for line in lines:
        check_quantity(line.qty)
        if (line.sku is None) == (line.barcode is None):
            raise ValidationFailed(errors={"lines": [_l("each line names a sku or a barcode")]})
    card_id = None
    if card_payload is not None:
        card = cards.resolve_card(session, payload=card_payload, keyring=keyring)
        household_id, card_id = card.household_id, card.id
    assert household_id is not None
    # Locks the household's account, and is the look-up that answers 404 for no household.
    hold = ledger.hold_for_redemption(
        session,
        actor=actor,
        household_id=household_id,
        shop_code=shop_code,
        idempotency_key=idempotency_key,
        mode=(
            ledger.SpendMode.OFFLINE
            if offline
            else ledger.SpendMode.VIA_NODE
            if via_node
            else ledger.SpendMode.ONLINE
        ),
        allowance_cap=allowance_cap,
    )
    if shop_id is None:
        raise NotFound(_l("no shop %(code)s", code=shop_code))
    products = _products_for(session, lines, allow_inactive=offline is not None)
    merged: dict[int, list[Any]] = {}
    for product, line in zip(products, lines, strict=True):
        entry = merged.setdefault(product.id, [product, 0])
        entry[1] += line.qty
    for _product, qty in merged.values():
        check_quantity(qty)
    total = sum(p.points_price * qty for p, qty in merged.values())
    if total > ledger.MAX_TRANSFER_POINTS:
        raise ValidationFailed(
            errors={
                "lines": [
                    _l("at most %(most)s points in one sale", most=ledger.MAX_TRANSFER_POINTS)
                ]
            }
        )
    # Refused before a receipt number is taken; the posting checks it again under the lock.
    forgiven = Forgiven(inactive=tuple(p.sku for p, _qty in merged.values() if not p.active))
    try:
        balance_after = hold.balance_after(total)
    except (InsufficientPoints, Conflict):
        if offline is None:
            raise
        # The reserve no longer covers it (a penalty took it meanwhile), or the household
        # was deactivated: it pays what it can, down to zero; the rest is its shortfall.
        hold = replace(hold, mode=ledger.SpendMode.SETTLE)
        charged = min(total, max(0, hold.target.balance))
        forgiven = replace(
            forgiven,
            settled=True,
            shortfall=total - charged,
            household_inactive=hold.target.status != "active",
            foreign=hold.target.escrow_shop_code != shop_code,
        )
        total = charged
        balance_after = hold.balance_after(total)
    if offline is not None:
        # The sale happened when the node made it: its day, its time, its number.
        now = offline.made_at
        day = business_day(now, tz)
        seq, receipt_no = offline.seq, offline.receipt_no
    else:
        day = business_day(now, tz)
        seq = _next_receipt_seq(session, shop_id, day)
        receipt_no = receipt_number(shop_code, day, seq)
    sold = [
        SaleLineView(p.sku, p.name, qty, p.points_price, p.points_price * qty)
        for p, qty in merged.values()
    ]
    row = {
        "shop_id": shop_id,
        "shop_code": shop_code,
        "receipt_no": receipt_no,
        "business_day": day,
        "seq": seq,
        "household_id": household_id,
        "card_id": card_id,
        "total_points": total,
        "balance_after": balance_after,
        "status": SaleStatus.COMPLETED.value,
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint,
        "clerk_id": actor.id,
        "created_at": now,
        "offline": offline is not None,
    }
    sale_id = _insert_sale(session, row, sold, list(merged))
    # The sale's id goes on the ledger transfer, so the day's report can pair them.
    if total > 0:
        ledger.post_redemption(
            session, hold, actor=actor, now=now, points=total, sale_id=sale_id, reason=receipt_no
        )
    inventory.take_sale_stock(
        session,
        actor=actor,
        now=now,
        shop_id=shop_id,
        shop_code=shop_code,
        allow_negative_stock=bool(allow_negative_stock) or offline is not None,
        lines=[inventory.SaleStock(p.id, p.sku, p.name, qty) for p, qty in merged.values()],
        reference=receipt_no,
        idempotency_key=idempotency_key,
        offline=offline is not None,
    )
    view = SaleView(
        id=sale_id,
        receipt_no=receipt_no,
        shop_code=shop_code,
        household_id=household_id,
        total_points=total,
        balance_after=balance_after,
        lines=sold,
        offline=offline is not None,
    )
    # The row as inserted, known to the session without a SELECT (lines and returns load
    # if asked for); the commit expires it like any other.
    sale = Sale(id=sale_id, **row)
    make_transient_to_detached(sale)
    session.add(sale)
    return SaleResult(session, sale_id, replayed=False, view=view, sale=sale, forgiven=forgiven)

"""Counter operations. Each takes the session, the acting user and the time; none commits."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, insert, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from core.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    NotFound,
    ReturnExceedsSale,
    UnknownProduct,
    ValidationFailed,
)
from core.idempotency import request_fingerprint
from core.ids import is_id
from core.scanned import normalize_code, normalize_scanned
from core.spreadsheets import SafeCsvWriter
from core.timeutil import business_day
from inventory import services as inventory
from inventory.models import Product, Shop
from ledger import services as ledger
from ledger.models import Account, Household, Transfer, TransferKind
from member_cards import services as cards
from member_cards.signing import Keyring
from pos import receipts
from pos.models import (
    ReceiptCounter,
    ReturnKind,
    Sale,
    SaleLine,
    SaleReturn,
    SaleReturnLine,
    SaleStatus,
)

if TYPE_CHECKING:
    from accounts.auth import User

MAX_LINES = inventory.MAX_LINES
MAX_QUANTITY = inventory.MAX_QUANTITY
MAX_REASON = 500
# Sales ids are 32-bit; a larger one cannot exist and must not reach the database.


@dataclass(frozen=True)
class LineRequest:
    """One line as the counter sent it: a product by sku or by barcode, and a quantity."""

    qty: int
    sku: str | None = None
    barcode: str | None = None


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
    ) -> None:
        self.sale_id = sale_id
        self.replayed = replayed
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


@dataclass(frozen=True)
class Goods:
    """A product scanned at the counter, with what this shop holds of it."""

    sku: str
    barcode: str | None
    name: str
    unit: str
    points_price: int
    active: bool
    on_hand: int
    allow_negative_stock: bool


@dataclass(frozen=True)
class Customer:
    """What the counter shows for a scanned card: who, and what they can spend."""

    household_id: int
    head_name: str
    members: list[str]
    village_name: str
    balance: int
    floor: int
    spendable: int
    card_serial: str | None = None


def _require_staff(actor: User, shop_code: str) -> None:
    if not actor.may_sell_at(shop_code):
        raise Forbidden(_l("you may not sell at shop %(shop_code)s", shop_code=shop_code))


def _require_manager(actor: User, shop_code: str) -> None:
    if not actor.may_manage_shop(shop_code):
        raise Forbidden(_l("only a manager of shop %(shop_code)s may do this", shop_code=shop_code))


def _check_quantity(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        raise ValidationFailed(
            errors={"qty": [_l("a whole number from 1 to %(high)s", high=MAX_QUANTITY)]}
        )


def _check_lines(lines: Sequence[Any]) -> None:
    if not 1 <= len(lines) <= MAX_LINES:
        raise ValidationFailed(errors={"lines": [_l("1 to %(most)s lines", most=MAX_LINES)]})


def _reason(value: str | None) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(errors={"reason": [_l("required")]})
    if len(value) > MAX_REASON:
        raise ValidationFailed(
            errors={"reason": [_l("at most %(most)s characters", most=MAX_REASON)]}
        )
    return value


# --- the customer -------------------------------------------------------------------


def _customer(household: Household, card_serial: str | None = None) -> Customer:
    names = [m.name for m in household.members]
    floor = household.village.redemption_floor
    balance = household.account.balance
    return Customer(
        household_id=household.id,
        head_name=household.head_name,
        members=names,
        village_name=household.village.name,
        balance=balance,
        floor=floor,
        spendable=max(balance - floor, 0),
        card_serial=card_serial,
    )


def find_customer(
    session: Session, *, actor: User, shop_code: str, card_payload: str, keyring: Keyring
) -> Customer:
    """The household behind a card scanned at the counter (invalid, unknown, revoked refused)."""
    _require_staff(actor, shop_code)
    card = cards.resolve_card(session, payload=card_payload, keyring=keyring)
    return _customer(card.household, card.serial)


# --- the goods ----------------------------------------------------------------------


def find_goods(session: Session, *, actor: User, shop_code: str, code: str) -> Goods:
    """The product behind a code scanned or typed at the counter: its barcode, else its sku.

    One answer in place of the two look-ups a counter would otherwise make, with the
    shop's stock, so it can warn of goods the shelf no longer holds while still scanning.
    """
    _require_staff(actor, shop_code)
    shop = inventory.get_shop(session, shop_code)
    product = inventory.product_by_code(session, code)
    return Goods(
        sku=product.sku,
        barcode=product.barcode,
        name=product.name,
        unit=product.unit,
        points_price=product.points_price,
        active=product.active,
        on_hand=inventory.stock_on_hand(session, shop=shop, product=product),
        allow_negative_stock=shop.allow_negative_stock,
    )


# --- selling ------------------------------------------------------------------------


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


def _next_seq_statement(dialect: Any) -> Any:
    return (
        dialect.insert(_counters)
        .values(shop_id=bindparam("b_shop_id"), business_day=bindparam("b_day"), last_seq=1)
        .on_conflict_do_update(
            index_elements=[_counters.c.shop_id, _counters.c.business_day],
            set_={"last_seq": _counters.c.last_seq + 1},
        )
        .returning(_counters.c.last_seq)
    )


_NEXT_SEQ = {"postgresql": _next_seq_statement(postgresql), "sqlite": _next_seq_statement(sqlite)}

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
    stmt = _NEXT_SEQ[conn.dialect.name]
    return int(conn.execute(stmt, {"b_shop_id": shop_id, "b_day": day}).scalar_one())


def _read_line(line: LineRequest) -> LineRequest:
    """The line with its sku or barcode read as a scan is (see core.scanned)."""
    return LineRequest(
        qty=line.qty,
        sku=None if line.sku is None else normalize_scanned(line.sku),
        barcode=None if line.barcode is None else normalize_scanned(line.barcode),
    )


def _products_for(session: Session, lines: Sequence[LineRequest]) -> list[_Product]:
    """Each line's product, by sku (as inventory spells it) or barcode; unknowns named at once."""
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
    if inactive:
        raise UnknownProduct(
            _l("no longer sold: %(products)s", products=", ".join(inactive)), products=inactive
        )
    return found


def _sale_replay(
    session: Session, key: str, fingerprint: str, sale_id: int, request_hash: str
) -> SaleResult:
    """The sale an earlier request with this key made, if this request is the same one."""
    if request_hash != fingerprint:
        raise IdempotencyConflict(
            _l("idempotency key %(key)s was used for another request", key=key)
        )
    return SaleResult(session, sale_id, replayed=True)


def _insert_sale(
    session: Session,
    sale: dict[str, Any],
    lines: Sequence[SaleLineView],
    product_ids: Sequence[int],
) -> int:
    """Insert the sale and its lines; the sale's id."""
    conn = session.connection()
    params = {f"b_{name}": value for name, value in sale.items()}
    if conn.dialect.name == "postgresql":
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
) -> SaleResult:
    """Sell: the sale, its redemption and its stock movements, all in the caller's transaction.

    Any refusal raises a DomainError after some rows may have been written; the edge
    rolls the whole transaction back, so points, goods and the sale move together or not
    at all. Repeated lines of one product merge into one.

    Locks are taken in one order, the household's account, the shop's receipt counter,
    then its stock rows by product, so concurrent sales queue but never deadlock.
    """
    _require_staff(actor, shop_code)
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
        return _sale_replay(session, idempotency_key, fingerprint, replay_id, replay_hash)
    if (card_payload is None) == (household_id is None):
        raise ValidationFailed(
            errors={"card_payload": [_l("give either a card payload or a household id")]}
        )
    _check_lines(lines)
    for line in lines:
        _check_quantity(line.qty)
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
    )
    if shop_id is None:
        raise NotFound(_l("no shop %(code)s", code=shop_code))
    products = _products_for(session, lines)
    merged: dict[int, list[Any]] = {}
    for product, line in zip(products, lines, strict=True):
        entry = merged.setdefault(product.id, [product, 0])
        entry[1] += line.qty
    for _product, qty in merged.values():
        _check_quantity(qty)
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
    balance_after = hold.balance_after(total)
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
    }
    sale_id = _insert_sale(session, row, sold, list(merged))
    # The sale's id goes on the ledger transfer, so the day's report can pair them.
    ledger.post_redemption(
        session, hold, actor=actor, now=now, points=total, sale_id=sale_id, reason=receipt_no
    )
    inventory.take_sale_stock(
        session,
        actor=actor,
        now=now,
        shop_id=shop_id,
        shop_code=shop_code,
        allow_negative_stock=bool(allow_negative_stock),
        lines=[inventory.SaleStock(p.id, p.sku, p.name, qty) for p, qty in merged.values()],
        reference=receipt_no,
        idempotency_key=idempotency_key,
    )
    view = SaleView(
        id=sale_id,
        receipt_no=receipt_no,
        shop_code=shop_code,
        household_id=household_id,
        total_points=total,
        balance_after=balance_after,
        lines=sold,
    )
    # The row as inserted, known to the session without a SELECT (lines and returns load
    # if asked for); the commit expires it like any other.
    sale = Sale(id=sale_id, **row)
    make_transient_to_detached(sale)
    session.add(sale)
    return SaleResult(session, sale_id, replayed=False, view=view, sale=sale)


def get_sale(session: Session, *, actor: User, sale_id: int) -> Sale:
    sale = session.get(Sale, sale_id) if is_id(sale_id) else None
    if sale is None or not actor.may_sell_at(sale.shop_code):
        # Another shop's sale is as good as absent: ids must not reveal other shops' trade.
        raise NotFound(_l("no sale %(sale_id)s", sale_id=sale_id))
    return sale


def find_sales(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    receipt_no: str | None = None,
    household_id: int | None = None,
    day: date | None = None,
    limit: int = 100,
) -> Sequence[Sale]:
    """A shop's sales by receipt number, household or business day, newest first."""
    _require_staff(actor, shop_code)
    stmt = select(Sale).where(Sale.shop_code == shop_code)
    if receipt_no:
        stmt = stmt.where(Sale.receipt_no == _receipt_spelling(shop_code, receipt_no))
    if household_id is not None:
        stmt = stmt.where(Sale.household_id == household_id)
    if day is not None:
        stmt = stmt.where(Sale.business_day == day)
    return session.scalars(stmt.order_by(Sale.id.desc()).limit(limit)).all()


def _receipt_spelling(shop_code: str, receipt_no: str) -> str:
    """A typed receipt number as it is stored, its case being noise (API.md).

    Numbers read shop code, day and sequence (receipt_number); only the shop's code has
    letters, and it is stored as the shop spells it, so an exact, indexed match is kept.
    """
    typed = normalize_code(receipt_no)
    prefix = f"{shop_code}-"
    if typed.startswith(prefix.upper()):
        return prefix + typed[len(prefix) :]
    return typed


def household_heads(session: Session, household_ids: Sequence[int]) -> dict[int, str]:
    """Head of household by id, for lists of sales: one query, not one per row."""
    ids = set(household_ids)
    if not ids:
        return {}
    rows = session.execute(select(Household.id, Household.head_name).where(Household.id.in_(ids)))
    return dict(rows.all())


# --- returns and voids --------------------------------------------------------------


def returned_qty(sale: Sale) -> dict[int, int]:
    """Quantity already brought back, per sale line id."""
    taken: dict[int, int] = {}
    for earlier in sale.returns:
        for line in earlier.lines:
            taken[line.sale_line_id] = taken.get(line.sale_line_id, 0) + line.qty
    return taken


def _return_replay(session: Session, key: str, fingerprint: str) -> SaleReturn | None:
    found = session.scalar(select(SaleReturn).where(SaleReturn.idempotency_key == key))
    if found is None:
        return None
    if found.request_hash != fingerprint:
        raise IdempotencyConflict(
            _l("idempotency key %(key)s was used for another request", key=key)
        )
    return found


def _lock_sale(session: Session, sale_id: int) -> None:
    # Two returns of one sale must not both pass the "not yet returned" check.
    session.execute(select(Sale.id).where(Sale.id == sale_id).with_for_update())


def _post_return(
    session: Session,
    *,
    actor: User,
    now: datetime,
    tz: ZoneInfo,
    sale: Sale,
    kind: ReturnKind,
    wanted: dict[int, int],
    reason: str,
    key: str,
    fingerprint: str,
) -> SaleReturn:
    """Refund the wanted quantities (per sale line id) and put the goods back on the shelf."""
    by_id = {line.id: line for line in sale.lines}
    taken = returned_qty(sale)
    too_many = []
    for line_id, qty in wanted.items():
        line = by_id[line_id]
        left = line.qty - taken.get(line_id, 0)
        if qty > left:
            too_many.append({"sku": line.sku, "requested": qty, "returnable": left})
    if too_many:
        goods = "; ".join(
            str(
                _l(
                    "%(sku)s: %(requested)s asked, %(returnable)s can be returned",
                    sku=item["sku"],
                    requested=item["requested"],
                    returnable=item["returnable"],
                )
            )
            for item in too_many
        )
        raise ReturnExceedsSale(
            _l("More than was sold and not yet returned: %(goods)s", goods=goods), lines=too_many
        )
    return_lines = [
        SaleReturnLine(
            sale_line_id=line_id,
            sku=by_id[line_id].sku,
            qty=qty,
            points=by_id[line_id].points_each * qty,
        )
        for line_id, qty in wanted.items()
    ]
    refund = sum(line.points for line in return_lines)
    record = SaleReturn(
        sale_id=sale.id,
        shop_id=sale.shop_id,
        kind=kind,
        business_day=business_day(now, tz),
        reason=reason,
        refund_points=refund,
        balance_after=0,
        idempotency_key=key,
        request_hash=fingerprint,
        actor_id=actor.id,
        created_at=now,
        lines=return_lines,
    )
    sale.returns.append(record)
    session.flush()
    posting = ledger.refund_points(
        session,
        actor=actor,
        now=now,
        household_id=sale.household_id,
        shop_code=sale.shop_code,
        points=refund,
        idempotency_key=key,
        sale_id=sale.id,
        reason=reason,
    )
    inventory.return_stock(
        session,
        actor=actor,
        now=now,
        shop_code=sale.shop_code,
        lines=[(by_id[line_id].product_id, qty) for line_id, qty in wanted.items()],
        reference=sale.receipt_no,
        idempotency_key=key,
    )
    record.balance_after = posting.balance
    if kind == ReturnKind.VOID:
        sale.status = SaleStatus.VOIDED
    session.flush()
    return record


def record_return(
    session: Session,
    *,
    actor: User,
    now: datetime,
    tz: ZoneInfo,
    sale_id: int,
    lines: Sequence[tuple[str, int]],
    reason: str,
    idempotency_key: str,
) -> SaleReturn:
    """Goods back against a sale, by line and quantity: points refunded, goods restocked."""
    lines = list(lines)
    fingerprint = request_fingerprint(
        sale_id=sale_id, lines=[[sku, qty] for sku, qty in lines], reason=reason
    )
    key = f"return:{idempotency_key}"
    sale = get_sale(session, actor=actor, sale_id=sale_id)
    _require_manager(actor, sale.shop_code)
    replay = _return_replay(session, key, fingerprint)
    if replay is not None:
        return replay
    reason = _reason(reason)
    _check_lines(lines)
    _lock_sale(session, sale.id)
    session.refresh(sale)
    if sale.status == SaleStatus.VOIDED:
        raise Conflict(_l("sale %(receipt_no)s was voided", receipt_no=sale.receipt_no))
    by_sku = {line.sku: line for line in sale.lines}
    wanted: dict[int, int] = {}
    for sku, qty in lines:
        _check_quantity(qty)
        spellings = inventory.sku_spellings(normalize_scanned(sku))
        line = next((by_sku[s] for s in spellings if s in by_sku), None)
        if line is None:
            raise ReturnExceedsSale(
                _l("%(sku)s is not on receipt %(receipt_no)s", sku=sku, receipt_no=sale.receipt_no),
                lines=[{"sku": sku, "requested": qty, "returnable": 0}],
            )
        wanted[line.id] = wanted.get(line.id, 0) + qty
    return _post_return(
        session,
        actor=actor,
        now=now,
        tz=tz,
        sale=sale,
        kind=ReturnKind.RETURN,
        wanted=wanted,
        reason=reason,
        key=key,
        fingerprint=fingerprint,
    )


def void_sale(
    session: Session,
    *,
    actor: User,
    now: datetime,
    tz: ZoneInfo,
    sale_id: int,
    reason: str,
    idempotency_key: str,
) -> SaleReturn:
    """Undo a whole sale on its own business day (a manager's decision): all of it back."""
    fingerprint = request_fingerprint(sale_id=sale_id, reason=reason)
    key = f"return:{idempotency_key}"
    sale = get_sale(session, actor=actor, sale_id=sale_id)
    _require_manager(actor, sale.shop_code)
    replay = _return_replay(session, key, fingerprint)
    if replay is not None:
        return replay
    reason = _reason(reason)
    _lock_sale(session, sale.id)
    session.refresh(sale)
    if sale.status == SaleStatus.VOIDED:
        raise Conflict(_l("sale %(receipt_no)s was voided", receipt_no=sale.receipt_no))
    if business_day(now, tz) != sale.business_day:
        raise Conflict(_l("only a sale of today can be voided; take a return instead"))
    taken = returned_qty(sale)
    wanted = {line.id: line.qty - taken.get(line.id, 0) for line in sale.lines}
    wanted = {line_id: qty for line_id, qty in wanted.items() if qty > 0}
    if not wanted:
        raise Conflict(_l("everything on this sale was already returned"))
    return _post_return(
        session,
        actor=actor,
        now=now,
        tz=tz,
        sale=sale,
        kind=ReturnKind.VOID,
        wanted=wanted,
        reason=reason,
        key=key,
        fingerprint=fingerprint,
    )


# --- the day's report ---------------------------------------------------------------


@dataclass
class ProductDay:
    sku: str
    name: str
    qty_sold: int = 0
    qty_returned: int = 0
    points: int = 0


@dataclass
class DailyReport:
    shop_code: str
    shop_name: str
    day: date
    sales: int
    voided: int
    points_redeemed: int
    points_refunded: int
    net_points: int
    ledger_redeemed: int
    ledger_refunded: int
    ledger_points: int
    matches_ledger: bool
    by_product: list[ProductDay] = field(default_factory=list)
    by_clerk: list[dict[str, Any]] = field(default_factory=list)
    sale_rows: list[Sale] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    # Returns and voids taken this day, also against sales of earlier days.
    return_rows: list[dict[str, Any]] = field(default_factory=list)


def daily_report(
    session: Session, *, actor: User, shop_code: str, day: date, tz: ZoneInfo
) -> DailyReport:
    """The shop's day, and whether the ledger's transfers for that shop and day agree.

    Sales and returns are paired with redemption and refund transfers by sale id; the
    ledger's side is the shop account's transfers whose local date is the day.
    """
    from accounts.auth import User as UserModel

    _require_manager(actor, shop_code)
    shop = inventory.get_shop(session, shop_code)
    sales = session.scalars(
        select(Sale).where(Sale.shop_id == shop.id, Sale.business_day == day).order_by(Sale.seq)
    ).all()
    returns = session.scalars(
        select(SaleReturn)
        .where(SaleReturn.shop_id == shop.id, SaleReturn.business_day == day)
        .order_by(SaleReturn.id)
    ).all()

    products: dict[str, ProductDay] = {}
    clerks: dict[int, dict[str, Any]] = {}
    for sale in sales:
        for line in sale.lines:
            item = products.setdefault(line.sku, ProductDay(line.sku, line.name))
            item.qty_sold += line.qty
            item.points += line.points
        clerk = clerks.setdefault(
            sale.clerk_id, {"clerk_id": sale.clerk_id, "sales": 0, "points": 0}
        )
        clerk["sales"] += 1
        clerk["points"] += sale.total_points
    for ret in returns:
        for rline in ret.lines:
            if rline.sku not in products:
                products[rline.sku] = ProductDay(rline.sku, _line_name(session, rline))
            products[rline.sku].qty_returned += rline.qty
            products[rline.sku].points -= rline.points
    usernames = dict(
        session.execute(
            select(UserModel.id, UserModel.username).where(UserModel.id.in_(list(clerks)))
        ).all()
    )
    for clerk in clerks.values():
        clerk["username"] = usernames.get(clerk["clerk_id"], "")

    # The ledger's view: transfers touching the shop's account created on that local day.
    start, end = _day_bounds(day, tz)
    account_id = session.scalar(
        select(Account.id).where(Account.code == ledger.shop_account_code(shop.code))
    )
    ledger_by_sale: dict[tuple[str, int | None], int] = {}
    if account_id is not None:
        rows = session.execute(
            select(Transfer.kind, Transfer.sale_id, func.sum(Transfer.amount))
            .where(
                Transfer.kind.in_([TransferKind.REDEMPTION, TransferKind.REFUND]),
                (Transfer.credit_account_id == account_id)
                | (Transfer.debit_account_id == account_id),
                Transfer.created_at >= start,
                Transfer.created_at < end,
            )
            .group_by(Transfer.kind, Transfer.sale_id)
        ).all()
        ledger_by_sale = {(str(kind), sale_id): int(total) for kind, sale_id, total in rows}
    ours: dict[tuple[str, int | None], int] = {}
    for sale in sales:
        key = (str(TransferKind.REDEMPTION), sale.id)
        ours[key] = ours.get(key, 0) + sale.total_points
    for ret in returns:
        key = (str(TransferKind.REFUND), ret.sale_id)
        ours[key] = ours.get(key, 0) + ret.refund_points
    receipts = {sale.id: sale.receipt_no for sale in sales}
    differences = []
    for key in sorted(set(ours) | set(ledger_by_sale), key=lambda k: (k[0], k[1] or 0)):
        shop_side, ledger_side = ours.get(key, 0), ledger_by_sale.get(key, 0)
        if shop_side != ledger_side:
            differences.append(
                {
                    "kind": key[0],
                    "sale_id": key[1],
                    "receipt_no": receipts.get(key[1]) if key[1] is not None else None,
                    "shop_points": shop_side,
                    "ledger_points": ledger_side,
                }
            )
    redeemed = sum(sale.total_points for sale in sales)
    refunded = sum(ret.refund_points for ret in returns)
    ledger_redeemed = sum(v for (k, _), v in ledger_by_sale.items() if k == TransferKind.REDEMPTION)
    ledger_refunded = sum(v for (k, _), v in ledger_by_sale.items() if k == TransferKind.REFUND)
    return DailyReport(
        shop_code=shop.code,
        shop_name=shop.name,
        day=day,
        sales=len(sales),
        voided=sum(1 for sale in sales if sale.status == SaleStatus.VOIDED),
        points_redeemed=redeemed,
        points_refunded=refunded,
        net_points=redeemed - refunded,
        ledger_redeemed=ledger_redeemed,
        ledger_refunded=ledger_refunded,
        ledger_points=ledger_redeemed - ledger_refunded,
        matches_ledger=not differences,
        by_product=sorted(products.values(), key=lambda p: p.sku),
        by_clerk=sorted(clerks.values(), key=lambda c: c["username"]),
        sale_rows=list(sales),
        differences=differences,
        return_rows=_return_rows(session, returns),
    )


def _return_rows(session: Session, returns: Sequence[SaleReturn]) -> list[dict[str, Any]]:
    sale_ids = {ret.sale_id for ret in returns}
    found = session.execute(select(Sale.id, Sale.receipt_no).where(Sale.id.in_(sale_ids)))
    receipts_of = dict(found.all()) if sale_ids else {}
    return [
        {
            "sale_id": ret.sale_id,
            "receipt_no": receipts_of.get(ret.sale_id, ""),
            "kind": ret.kind,
            "refund_points": ret.refund_points,
            "reason": ret.reason,
            "actor_id": ret.actor_id,
            "created_at": ret.created_at,
        }
        for ret in returns
    ]


def _line_name(session: Session, rline: SaleReturnLine) -> str:
    line = session.get(SaleLine, rline.sale_line_id)
    return line.name if line is not None else rline.sku


def _day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    from datetime import time, timedelta

    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def daily_report_csv(report: DailyReport) -> str:
    """The day as a spreadsheet: a summary, then goods by product, then every sale."""
    out = io.StringIO()
    # Product and shop names are typed by people: none may run as a spreadsheet formula.
    writer = SafeCsvWriter(out)
    writer.writerow([str(_l("Shop")), report.shop_code, report.shop_name])
    writer.writerow([str(_l("Date")), report.day.isoformat()])
    writer.writerow([str(_l("Sales")), report.sales])
    writer.writerow([str(_l("Points redeemed")), report.points_redeemed])
    writer.writerow([str(_l("Points refunded")), report.points_refunded])
    writer.writerow([str(_l("Ledger points")), report.ledger_points])
    writer.writerow([str(_l("Matches the ledger")), "yes" if report.matches_ledger else "no"])
    writer.writerow([])
    writer.writerow(["sku", "name", "qty_sold", "qty_returned", "points"])
    for item in report.by_product:
        writer.writerow([item.sku, item.name, item.qty_sold, item.qty_returned, item.points])
    writer.writerow([])
    writer.writerow(["receipt_no", "household_id", "clerk_id", "status", "total_points"])
    for sale in report.sale_rows:
        writer.writerow(
            [sale.receipt_no, sale.household_id, sale.clerk_id, sale.status, sale.total_points]
        )
    if report.differences:
        writer.writerow([])
        writer.writerow(["kind", "sale_id", "receipt_no", "shop_points", "ledger_points"])
        for diff in report.differences:
            writer.writerow(
                [
                    diff["kind"],
                    diff["sale_id"],
                    diff["receipt_no"],
                    diff["shop_points"],
                    diff["ledger_points"],
                ]
            )
    # A byte-order mark, so Excel (what the office opens it in) reads the Chinese as UTF-8.
    return "\ufeff" + out.getvalue()


def counter_shop(session: Session, *, actor: User, shop_code: str | None) -> Shop:
    """The shop whose counter the actor works: their own, or any for the county office."""
    code = actor.shop_code if not actor.is_admin else shop_code
    if not code:
        raise NotFound(_l("choose a shop: /counter?shop=<code>"))
    _require_staff(actor, code)
    return inventory.get_shop(session, code)


def receipt_data(session: Session, sale: Sale, *, tz: ZoneInfo, copy: bool) -> receipts.ReceiptData:
    """What a sale's receipt prints, gathered from the committed sale and resolved to text."""
    from accounts.auth import User as UserModel
    from member_cards.models import MemberCard

    shop = session.get(Shop, sale.shop_id)
    household = ledger.get_household(session, sale.household_id)
    clerk = session.get(UserModel, sale.clerk_id)
    card = session.get(MemberCard, sale.card_id) if sale.card_id is not None else None
    return receipts.ReceiptData(
        shop_name=shop.name if shop else sale.shop_code,
        at=sale.created_at.astimezone(tz),
        receipt_no=sale.receipt_no,
        clerk=clerk.username if clerk else "",
        head_name=household.head_name,
        # The last four of the serial tell the household which card it was; no more is needed.
        card_last4=card.serial[-4:] if card else None,
        lines=tuple(
            receipts.ReceiptLine(line.name, line.qty, line.points_each, line.points)
            for line in sale.lines
        ),
        total=sale.total_points,
        # The sale took exactly its total: the balance before is the balance after plus it.
        balance_before=sale.balance_after + sale.total_points,
        balance_after=sale.balance_after,
        returns=tuple(
            receipts.ReceiptReturn(str(ret.kind), ret.reason, ret.refund_points)
            for ret in sale.returns
        ),
        voided=sale.status == SaleStatus.VOIDED,
        copy=copy,
    )


def _receipt_sale(session: Session, actor: User | None, sale_id: int) -> Sale:
    if actor is not None:
        return get_sale(session, actor=actor, sale_id=sale_id)
    # No actor: the shop's own printing, after the sale was authorized.
    sale = session.get(Sale, sale_id) if is_id(sale_id) else None
    if sale is None:
        raise NotFound(_l("no sale %(sale_id)s", sale_id=sale_id))
    return sale


def sale_receipt(
    session: Session, *, actor: User, sale_id: int, tz: ZoneInfo, copy: bool, width: int
) -> str:
    """A sale's receipt as text (the printer's layout); a reprint is marked as a copy."""
    sale = get_sale(session, actor=actor, sale_id=sale_id)
    data = receipt_data(session, sale, tz=tz, copy=copy)
    return receipts.render_text(receipts.layout_receipt(data, columns=width))


def sale_receipt_escpos(
    session: Session,
    *,
    actor: User | None,
    sale_id: int,
    tz: ZoneInfo,
    copy: bool,
    paper_mm: int,
    mode: str,
    profile: str | None = None,
    font_path: str | None = None,
) -> bytes:
    """The exact ESC/POS bytes of a sale's receipt, in the printer's text or image mode."""
    sale = _receipt_sale(session, actor, sale_id)
    columns, _dots = receipts.PAPER[paper_mm]
    lines = receipts.layout_receipt(receipt_data(session, sale, tz=tz, copy=copy), columns=columns)
    return receipts.render_escpos(
        lines, paper_mm=paper_mm, mode=mode, profile=profile, font_path=font_path
    )


def sale_receipt_png(
    session: Session,
    *,
    actor: User | None,
    sale_id: int,
    tz: ZoneInfo,
    copy: bool,
    paper_mm: int,
    font_path: str | None = None,
) -> bytes:
    """The receipt as image mode prints it, as a PNG for the screen."""
    sale = _receipt_sale(session, actor, sale_id)
    columns, _dots = receipts.PAPER[paper_mm]
    lines = receipts.layout_receipt(receipt_data(session, sale, tz=tz, copy=copy), columns=columns)
    return receipts.render_png(lines, paper_mm=paper_mm, font_path=font_path)

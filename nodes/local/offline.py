"""Selling with the line down: the counter's answers from the node's own store.

OWNER: helper B. Every function takes the Session explicitly, raises core.errors domain
errors (their problem+json is the county's), and never commits. Bodies are the county's
shapes (pos.schemas, member_cards.schemas), so the counter page cannot tell them apart
except by `"offline": true` on a sale.

- `find_customer(session, *, shop_code, card_payload, now) -> dict` (CustomerOut)
- `resolve_card(session, *, card_payload) -> dict` (member_cards ResolveOut)
- `find_goods(session, *, shop_code, code) -> dict` (GoodsOut)
- `sell_offline(session, *, username, shop_code, lines, idempotency_key, card_payload=None,
   household_id=None, now, max_hours) -> dict` (SaleOut with offline true, receipt_no
   SHOP-YYYYMMDD-L####, sale_id = OFFLINE_ID_BASE + seq); a replay of its key answers
   the same body.
- `get_offline_sale(session, sale_id) -> dict` (SaleDetailOut)
- `offline_receipt(session, sale_id, *, fmt, paper, mode) -> (bytes|str, mimetype)`
- `print_state(session, sale_id) -> dict` (the counter's print state body)
- `note_online_sale(session, answer: dict, *, now)`: a sale the county answered while the
   line was up (pass-through): the household's allowance follows its balance_after.
- `node_status(session, *, now, online) -> dict` {online, last_sync_at, offline_since,
   pending_sales, allowance_households}
- `pending_sales(session) -> int`
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import (
    CardRevoked,
    Forbidden,
    InsufficientPoints,
    InvalidCard,
    NotFound,
    OutOfStock,
    Unavailable,
    UnknownProduct,
    ValidationFailed,
)
from core.idempotency import replay_or_conflict, request_fingerprint
from core.scanned import normalize_code, normalize_scanned
from inventory.services import sku_spellings
from ledger.services.registry import require_active
from member_cards import signing
from nodes import chain
from nodes.local.models import NodeCard, NodeHousehold, NodeProduct, OutboxSale, PrintQueueItem
from nodes.local.store import get_state, set_state
from pos.receipts import escpos
from pos.receipts.layout import (
    PAPER,
    PrintLine,
    ReceiptData,
    ReceiptLine,
    clean,
    layout_receipt,
    pad,
)
from pos.receipts.layout import render_text as render_receipt_text
from pos.services.limits import check_lines, check_quantity

# Offline sales' ids at the node: far above any county sale id, so the gateway can tell
# a path naming one (/api/v1/sales/<id>/...) and answer it locally even once online.
OFFLINE_ID_BASE = 2_000_000_000
DEFAULT_ALLOWANCE = 200
DEFAULT_MAX_HOURS = 72
DEFAULT_TIMEZONE = "Asia/Shanghai"

# node_state keys, shared with sync.py and printer.py.
CHAIN_SEQ = "chain_seq"
CHAIN_HEAD = "chain_head"
ALLOWANCE_CAP = "offline_allowance_points"
MAX_HOURS = "offline_max_hours"
OFFLINE_SINCE = "offline_since"
LAST_SYNC_AT = "last_sync_at"
CLOCK_SKEW = "clock_skew_seconds"
SHOP = "shop"
PRINTER = "printer"
SYNC_ERROR = "sync_error"

OFFLINE_LABEL = _l("Offline sale")


def _tz() -> ZoneInfo:
    if has_app_context():
        return ZoneInfo(current_app.config.get("TIMEZONE") or DEFAULT_TIMEZONE)
    return ZoneInfo(DEFAULT_TIMEZONE)


def parse_time(value: Any) -> datetime | None:
    """A time kept in node_state (ISO text) as an aware datetime."""
    if not value:
        return None
    at = datetime.fromisoformat(str(value))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def card_digest(payload: str) -> str:
    """The digest the feed lists a card by: sha256 of its payload read as the county reads it."""
    return hashlib.sha256(normalize_code(payload).encode("utf-8")).hexdigest()


def _own_shop(session: Session, shop_code: str) -> dict[str, Any]:
    shop = get_state(session, SHOP) or {}
    if not shop or normalize_code(shop_code) != str(shop.get("code", "")).upper():
        # The node sells for its own shop only, like its token.
        raise Forbidden(_l("this shop node sells for shop %(code)s only", code=shop.get("code")))
    return shop


def _member_names(members: Sequence[Any]) -> list[str]:
    return [str(m.get("name", "")) if isinstance(m, Mapping) else str(m) for m in members or []]


# --- what a household may spend ---------------------------------------------------------


def unreflected_points(session: Session, household: NodeHousehold) -> int:
    """Points of offline sales the household's allowance does not yet show.

    Those still waiting in the outbox, and those the county took after the household's
    figures were last taken in (the feed or an online sale shows them from then on).
    """
    unsynced = OutboxSale.synced_at.is_(None)
    if household.synced_at is not None:
        unsynced = or_(unsynced, OutboxSale.synced_at >= household.synced_at)
    total = session.scalar(
        select(func.coalesce(func.sum(OutboxSale.total_points), 0)).where(
            OutboxSale.household_id == household.id, unsynced
        )
    )
    return int(total or 0)


def available_allowance(session: Session, household: NodeHousehold) -> int:
    return max(household.allowance - unreflected_points(session, household), 0)


def _not_home_shop(needed: int) -> InsufficientPoints:
    refusal = InsufficientPoints(needed=needed, available=0, allowance=0, offline=True)
    refusal.detail = _l(
        "While the line is down, a household can spend only at its village's home shop, "
        "and this shop is not this household's home shop."
    )
    return refusal


# --- the customer and the goods ---------------------------------------------------------


def _card_household(
    session: Session, card_payload: str, needed: int = 0
) -> tuple[NodeHousehold, NodeCard]:
    payload = normalize_code(card_payload)
    card = session.get(NodeCard, card_digest(payload))
    if card is None:
        if len(payload) <= signing.MAX_PAYLOAD_CHARS and signing._PAYLOAD.fullmatch(payload):
            # A card of another village (or one issued since the last sync).
            raise _not_home_shop(needed)
        raise InvalidCard(_l("the code does not verify as a member card"))
    if not card.active:
        raise CardRevoked(_l("card %(serial)s is %(status)s", serial=card.serial, status="revoked"))
    household = session.get(NodeHousehold, card.household_id)
    if household is None:
        raise _not_home_shop(needed)
    return household, card


def _require_active(household: NodeHousehold) -> None:
    # The county's own refusal, in its words.
    require_active(household.id, "active" if household.active else "inactive")


def find_customer(
    session: Session, *, shop_code: str, card_payload: str, now: datetime
) -> dict[str, Any]:
    """The household behind a card scanned offline: what it may spend is its allowance."""
    shop = _own_shop(session, shop_code)
    household, card = _card_household(session, card_payload)
    _require_active(household)
    cap = int(get_state(session, ALLOWANCE_CAP, DEFAULT_ALLOWANCE))
    available = available_allowance(session, household)
    spent = unreflected_points(session, household)
    return {
        "household_id": household.id,
        "head_name": household.head_name,
        "members": _member_names(household.members),
        "village_name": household.village_name,
        "balance": household.balance - spent,
        "floor": household.floor,
        "spendable": available,
        "card_serial": card.serial,
        "reserve_cap": cap,
        "reserved": available,
        "reserved_for": shop.get("name"),
    }


def resolve_card(session: Session, *, card_payload: str) -> dict[str, Any]:
    """The household behind a card, as POST /cards/resolve answers (from the synced list)."""
    household, card = _card_household(session, card_payload)
    return {
        "household": {
            "id": household.id,
            "head_name": household.head_name,
            "members": [{"name": name} for name in _member_names(household.members)],
            "village_code": household.village_code,
            "balance": household.balance - unreflected_points(session, household),
            "integrity_score": None,
            "status": "active" if household.active else "inactive",
        },
        "card": {"card_id": None, "serial": card.serial, "status": "active"},
    }


def _product_by_code(session: Session, code: str) -> NodeProduct:
    spelled = normalize_scanned(code)
    product = None
    if spelled:
        product = session.scalar(select(NodeProduct).where(NodeProduct.barcode == spelled))
        for sku in sku_spellings(spelled):
            if product is None:
                product = session.get(NodeProduct, sku)
    if product is None:
        shown = spelled[:32] or code[:32]
        raise UnknownProduct(
            _l("no product has barcode or SKU %(code)s", code=shown), products=[shown]
        )
    return product


def find_goods(session: Session, *, shop_code: str, code: str) -> dict[str, Any]:
    """The product behind a scanned code, with this shop's stock as the node knows it."""
    _own_shop(session, shop_code)
    product = _product_by_code(session, code)
    return _goods(product)


def _goods(product: NodeProduct) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "barcode": product.barcode,
        "name": product.name,
        "unit": product.unit,
        "points_price": product.points_price,
        "active": product.active,
        "on_hand": product.on_hand,
        "allow_negative_stock": product.allow_negative_stock,
    }


# --- selling ---------------------------------------------------------------------------


def _line_ref(line: Any) -> tuple[str | None, str | None, int]:
    if isinstance(line, Mapping):
        sku, barcode, qty = line.get("sku"), line.get("barcode"), line.get("qty")
    else:
        sku, barcode, qty = line.sku, line.barcode, line.qty
    sku = None if sku is None else normalize_scanned(str(sku))
    barcode = None if barcode is None else normalize_scanned(str(barcode))
    return sku, barcode, qty


def _products_for(
    session: Session, refs: Sequence[tuple[str | None, str | None, int]]
) -> list[NodeProduct]:
    found: list[NodeProduct] = []
    unknown: list[str] = []
    for sku, barcode, _qty in refs:
        product = None
        if sku is not None:
            for spelling in sku_spellings(sku):
                product = product or session.get(NodeProduct, spelling)
        elif barcode:
            product = session.scalar(select(NodeProduct).where(NodeProduct.barcode == barcode))
        if product is None:
            unknown.append(str(sku if sku is not None else barcode)[:32])
        else:
            found.append(product)
    if unknown:
        names = list(dict.fromkeys(unknown))
        raise UnknownProduct(
            _l("unknown products: %(products)s", products=", ".join(names)), products=names
        )
    inactive = list(dict.fromkeys(p.sku for p in found if not p.active))
    if inactive:
        raise UnknownProduct(
            _l("no longer sold: %(products)s", products=", ".join(inactive)), products=inactive
        )
    return found


def _receipt_key(at: datetime) -> tuple[str, str]:
    day = at.astimezone(_tz()).date()
    return f"receipts:{day:%Y%m%d}", f"{day:%Y%m%d}"


def _next_receipt_no(session: Session, shop_code: str, made_at: datetime) -> str:
    key, day = _receipt_key(made_at)
    number = int(get_state(session, key, 0)) + 1
    set_state(session, key, number)
    return f"{shop_code}-{day}-L{number:04d}"


def skip_receipt_numbers(session: Session, now: datetime, at_least: int) -> None:
    """A re-installed node: today's series goes on past any number the old PC can have used.

    The one gap the series allows: the county refuses a receipt number it already has.
    """
    skew = float(get_state(session, CLOCK_SKEW, 0.0) or 0.0)
    key, _day = _receipt_key(now + timedelta(seconds=skew))
    set_state(session, key, max(int(get_state(session, key, 0)), at_least))


def _check_window(session: Session, now: datetime, max_hours: int | None) -> None:
    hours = max_hours if max_hours is not None else get_state(session, MAX_HOURS)
    hours = int(hours if hours is not None else DEFAULT_MAX_HOURS)
    since = parse_time(get_state(session, OFFLINE_SINCE))
    if since is not None and now - since > timedelta(hours=hours):
        raise Unavailable(
            _l(
                "The line to the county has been down for more than %(hours)s hours: offline "
                "selling has stopped until the shop node reaches the county again.",
                hours=hours,
            )
        )


def sell_offline(
    session: Session,
    *,
    username: str,
    shop_code: str,
    lines: Sequence[Any],
    idempotency_key: str,
    card_payload: str | None = None,
    household_id: int | None = None,
    now: datetime,
    max_hours: int | None = None,
) -> dict[str, Any]:
    """Sell from the store: the outbox row, its link in the chain, the stock, one receipt no.

    The caller's transaction (BEGIN IMMEDIATE on the store) makes the seq and the receipt
    number one writer's at a time; a refusal rolls both back, so they stay gapless.
    """
    shop = _own_shop(session, shop_code)
    code = str(shop["code"])
    refs = [_line_ref(line) for line in lines]
    if card_payload is not None:
        card_payload = normalize_code(card_payload)
    # As pos.record_sale fingerprints a counter sale: a retry of the key is the same sale.
    fingerprint = request_fingerprint(
        shop=shop_code,
        card_payload=card_payload,
        household_id=household_id,
        lines=[[sku, barcode, qty] for sku, barcode, qty in refs],
    )
    found = session.scalar(select(OutboxSale).where(OutboxSale.idempotency_key == idempotency_key))
    if found is not None:
        replay_or_conflict(
            found, recorded=found.request_hash, fingerprint=fingerprint, key=idempotency_key
        )
        return dict(found.answer)
    if (card_payload is None) == (household_id is None):
        raise ValidationFailed(
            errors={"card_payload": [_l("give either a card payload or a household id")]}
        )
    check_lines(refs)
    for sku, barcode, qty in refs:
        check_quantity(qty)
        if (sku is None) == (barcode is None):
            raise ValidationFailed(errors={"lines": [_l("each line names a sku or a barcode")]})
    _check_window(session, now, max_hours)

    products = _products_for(session, refs)
    merged: dict[str, list[Any]] = {}
    for product, (_sku, _barcode, qty) in zip(products, refs, strict=True):
        merged.setdefault(product.sku, [product, 0])[1] += qty
    for _product, qty in merged.values():
        check_quantity(qty)
    total = sum(p.points_price * qty for p, qty in merged.values())

    digest = None
    if card_payload is not None:
        household, card = _card_household(session, card_payload, total)
        digest = card.digest
    else:
        assert household_id is not None
        maybe = session.get(NodeHousehold, household_id)
        if maybe is None:
            raise _not_home_shop(total)
        household = maybe
    _require_active(household)
    available = available_allowance(session, household)
    if total > available:
        raise InsufficientPoints(
            needed=total,
            available=household.balance,
            floor=household.floor,
            allowance=available,
            offline=True,
        )
    short = [
        {"sku": p.sku, "name": p.name, "requested": qty, "on_hand": p.on_hand}
        for p, qty in merged.values()
        if p.on_hand < qty and not p.allow_negative_stock
    ]
    if short:
        raise OutOfStock(lines=short)

    skew = float(get_state(session, CLOCK_SKEW, 0.0) or 0.0)
    made_at = (now + timedelta(seconds=skew)).astimezone(UTC)
    seq = int(get_state(session, CHAIN_SEQ, 0)) + 1
    prev_hash = str(get_state(session, CHAIN_HEAD, chain.GENESIS))
    receipt_no = _next_receipt_no(session, code, made_at)
    sold = [
        {
            "sku": p.sku,
            "name": p.name,
            "qty": qty,
            "points_each": p.points_price,
            "points": p.points_price * qty,
        }
        for p, qty in merged.values()
    ]
    fields = chain.sale_fields(
        shop_code=code,
        seq=seq,
        idempotency_key=idempotency_key,
        receipt_no=receipt_no,
        made_at=made_at,
        household_id=household.id,
        card_digest=digest,
        lines=sold,
    )
    link = chain.sale_hash(prev_hash, fields)
    balance_after = household.balance - unreflected_points(session, household) - total
    answer = {
        "sale_id": OFFLINE_ID_BASE + seq,
        "receipt_no": receipt_no,
        "shop_code": code,
        "household_id": household.id,
        "total_points": total,
        "balance_after": balance_after,
        "lines": sold,
        "offline": True,
    }
    session.add(
        OutboxSale(
            seq=seq,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            receipt_no=receipt_no,
            made_at=made_at,
            household_id=household.id,
            card_digest=digest,
            lines=sold,
            total_points=total,
            prev_hash=prev_hash,
            hash=link,
            answer=answer,
            username=username,
        )
    )
    for product, qty in merged.values():
        product.on_hand -= qty
    set_state(session, CHAIN_SEQ, seq)
    set_state(session, CHAIN_HEAD, link)
    if get_state(session, PRINTER):
        session.add(PrintQueueItem(sale_id=OFFLINE_ID_BASE + seq, created_at=now))
    session.flush()
    return answer


# --- after the sale ---------------------------------------------------------------------


def _outbox_row(session: Session, sale_id: int) -> OutboxSale:
    row = None
    if isinstance(sale_id, int) and sale_id > OFFLINE_ID_BASE:
        row = session.get(OutboxSale, sale_id - OFFLINE_ID_BASE)
    if row is None:
        raise NotFound(_l("no sale %(sale_id)s", sale_id=sale_id))
    return row


def get_offline_sale(session: Session, sale_id: int) -> dict[str, Any]:
    """An offline sale as GET /sales/{id} shows it (SaleDetailOut)."""
    row = _outbox_row(session, sale_id)
    clerk_id = session.scalar(select(User.id).where(User.username == row.username))
    made_at = row.made_at.astimezone(_tz())
    return dict(row.answer) | {
        "status": "completed",
        "business_day": made_at.date().isoformat(),
        "clerk_id": clerk_id,
        "created_at": made_at.isoformat(),
        "returns": [],
    }


def _receipt_data(session: Session, row: OutboxSale) -> ReceiptData:
    shop = get_state(session, SHOP) or {}
    household = session.get(NodeHousehold, row.household_id)
    card = session.get(NodeCard, row.card_digest) if row.card_digest else None
    balance_after = int(row.answer.get("balance_after", 0))
    return ReceiptData(
        shop_name=str(shop.get("name") or shop.get("code") or ""),
        at=row.made_at.astimezone(_tz()),
        receipt_no=row.receipt_no,
        clerk=row.username,
        head_name=household.head_name if household else "",
        card_last4=card.serial[-4:] if card and card.serial else None,
        lines=tuple(
            ReceiptLine(line["name"], line["qty"], line["points_each"], line["points"])
            for line in row.lines
        ),
        total=row.total_points,
        balance_before=balance_after + row.total_points,
        balance_after=balance_after,
    )


def receipt_lines(session: Session, sale_id: int, *, columns: int) -> list[PrintLine]:
    """The offline sale's receipt, marked as an offline sale under the shop's name."""
    row = _outbox_row(session, sale_id)
    lines = layout_receipt(_receipt_data(session, row), columns=columns)
    title_end = next((i for i, line in enumerate(lines) if not line.double), 0)
    mark = replace(lines[title_end], text=_centered(str(OFFLINE_LABEL), columns), bold=True)
    return [*lines[:title_end], mark, *lines[title_end:]]


def _centered(text: str, columns: int) -> str:
    return pad(f"*** {clean(text)} ***", columns, "center")


def offline_receipt(
    session: Session, sale_id: int, *, fmt: str = "text", paper: int = 58, mode: str = "text"
) -> tuple[bytes | str, str]:
    """The receipt of an offline sale: text, ESC/POS bytes or a PNG preview."""
    if paper not in PAPER:
        # The gateway's schema (pos.schemas.ReceiptQuery) let nothing else through.
        raise ValueError(f"paper of 58 or 80 mm, not {paper}")
    lines = receipt_lines(session, sale_id, columns=PAPER[paper][0])
    return render_receipt(lines, fmt=fmt, paper=paper, mode=mode)


def render_receipt(
    lines: list[PrintLine], *, fmt: str, paper: int, mode: str = "text"
) -> tuple[bytes | str, str]:
    """Laid-out receipt lines as text, ESC/POS bytes or a PNG (no store needed)."""
    if fmt == "text":
        return render_receipt_text(lines), "text/plain"
    if fmt == "png":
        return escpos.render_png(lines, paper_mm=paper), "image/png"
    if fmt == "escpos":
        return escpos.render_escpos(lines, paper_mm=paper, mode=mode), "application/octet-stream"
    raise ValueError(f"a receipt as text, escpos or png, not {fmt}")


def print_state(session: Session, sale_id: int) -> dict[str, Any]:
    """Whether an offline sale's receipt printed (the body of GET /sales/{id}/print)."""
    from printing.services.reasons import error_message
    from printing.services.status import sale_print_message

    _outbox_row(session, sale_id)
    item = session.scalar(
        select(PrintQueueItem)
        .where(PrintQueueItem.sale_id == sale_id)
        .order_by(PrintQueueItem.id.desc())
        .limit(1)
    )
    if item is None:
        state = "not_queued" if get_state(session, PRINTER) else "no_printer"
        code = None
    else:
        state, code = item.status, item.error_code
    return {
        "state": state,
        "job_id": None,
        "kind": item.kind if item else None,
        "attempts": item.attempts if item else None,
        "error_code": code,
        "error_message": error_message(code),
        "message": sale_print_message(state, code),
    }


def note_online_sale(session: Session, answer: Mapping[str, Any], *, now: datetime) -> None:
    """A sale the county answered (pass-through): the household's allowance, the stock."""
    household = session.get(NodeHousehold, answer.get("household_id"))
    if household is not None and isinstance(answer.get("balance_after"), int):
        cap = int(get_state(session, ALLOWANCE_CAP, DEFAULT_ALLOWANCE))
        household.balance = int(answer["balance_after"])
        household.allowance = min(cap, max(0, household.balance - household.floor))
        # The county's balance shows every offline sale it took before this one.
        household.synced_at = now
    for line in answer.get("lines") or []:
        product = session.get(NodeProduct, str(line.get("sku", "")))
        if product is not None and isinstance(line.get("qty"), int):
            product.on_hand -= line["qty"]
    session.flush()


def pending_sales(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(OutboxSale.synced_at.is_(None))) or 0)


def node_status(session: Session, *, now: datetime, online: bool) -> dict[str, Any]:
    """GET /node/status: online or since when not, the last sync, what waits, who can spend."""
    return {
        "online": online,
        "last_sync_at": get_state(session, LAST_SYNC_AT),
        "offline_since": None if online else get_state(session, OFFLINE_SINCE),
        "pending_sales": pending_sales(session),
        "allowance_households": allowance_households(session),
        "sync_error": get_state(session, SYNC_ERROR),
    }


def allowance_households(session: Session) -> int:
    """How many households could spend offline now, in two queries whatever their number.

    Every counter asks every few seconds: those with an allowance, less those whose
    offline sales (not yet shown in their figures, as unreflected_points counts them)
    have used it all.
    """
    with_allowance = session.scalar(
        select(func.count()).where(NodeHousehold.active, NodeHousehold.allowance > 0)
    )
    spent = (
        select(OutboxSale.household_id, func.sum(OutboxSale.total_points).label("points"))
        .join(NodeHousehold, NodeHousehold.id == OutboxSale.household_id)
        .where(
            or_(
                OutboxSale.synced_at.is_(None),
                OutboxSale.synced_at >= NodeHousehold.synced_at,
            )
        )
        .group_by(OutboxSale.household_id)
        .subquery()
    )
    used_up = session.scalar(
        select(func.count())
        .select_from(NodeHousehold)
        .join(spent, spent.c.household_id == NodeHousehold.id)
        .where(
            NodeHousehold.active,
            NodeHousehold.allowance > 0,
            NodeHousehold.allowance - spent.c.points <= 0,
        )
    )
    return int(with_allowance or 0) - int(used_up or 0)

"""Returns and voids: goods back against a sale, points refunded, goods back on the shelf."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, ReturnExceedsSale
from core.idempotency import replay_or_conflict, request_fingerprint
from core.scanned import normalize_scanned
from core.timeutil import business_day
from inventory import services as inventory
from ledger import services as ledger
from pos.models import ReturnKind, Sale, SaleReturn, SaleReturnLine, SaleStatus
from pos.services.history import get_sale
from pos.services.limits import check_lines, check_quantity, read_reason


def returned_qty(sale: Sale) -> dict[int, int]:
    """Quantity already brought back, per sale line id."""
    taken: dict[int, int] = {}
    for earlier in sale.returns:
        for line in earlier.lines:
            taken[line.sale_line_id] = taken.get(line.sale_line_id, 0) + line.qty
    return taken


def _return_replay(session: Session, key: str, fingerprint: str) -> SaleReturn | None:
    found = session.scalar(select(SaleReturn).where(SaleReturn.idempotency_key == key))
    recorded = found.request_hash if found is not None else None
    return replay_or_conflict(found, recorded=recorded, fingerprint=fingerprint, key=key)


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
    actor.require_shop_manager(sale.shop_code)
    replay = _return_replay(session, key, fingerprint)
    if replay is not None:
        return replay
    reason = read_reason(reason)
    check_lines(lines)
    _lock_sale(session, sale.id)
    session.refresh(sale)
    if sale.status == SaleStatus.VOIDED:
        raise Conflict(_l("sale %(receipt_no)s was voided", receipt_no=sale.receipt_no))
    by_sku = {line.sku: line for line in sale.lines}
    wanted: dict[int, int] = {}
    for sku, qty in lines:
        check_quantity(qty)
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
    actor.require_shop_manager(sale.shop_code)
    replay = _return_replay(session, key, fingerprint)
    if replay is not None:
        return replay
    reason = read_reason(reason)
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

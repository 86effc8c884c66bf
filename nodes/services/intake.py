"""Offline sales reaching the county: in order, exactly once, chained, against the escrow."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, IdempotencyConflict, ValidationFailed
from core.idempotency import replay_or_conflict, request_fingerprint
from core.scanned import normalize_code, normalize_scanned
from member_cards.signing import Keyring
from nodes import chain
from nodes.models import NodeSale, ShopNode
from nodes.services.registration import node_of
from pos import services as pos
from pos.models import Sale
from pos.services.limits import check_lines, check_quantity


@dataclass(frozen=True)
class OfflineSaleRequest:
    """One offline sale as the node sends it (API: POST /api/v1/node/sales)."""

    seq: int
    prev_hash: str
    idempotency_key: str
    receipt_no: str
    made_at: datetime
    household_id: int
    lines: Sequence[tuple[str, int]]
    card_digest: str | None = None
    shop_code: str | None = None


@dataclass(frozen=True)
class NodeSaleResult:
    """The sale the county recorded (or had recorded) for an offline sale, and its link."""

    sale: pos.SaleView
    seq: int
    hash: str
    replayed: bool


def _receipt_pattern(shop_code: str) -> re.Pattern[str]:
    # The node's own series: "L" before the number, so it never meets the county's.
    return re.compile(rf"{re.escape(shop_code.upper())}-\d{{8}}-L\d{{1,6}}")


def _replay(
    session: Session, node: ShopNode, found: NodeSale, fingerprint: str, key: str
) -> NodeSaleResult:
    if found.node_id != node.id:
        raise IdempotencyConflict(
            _l("idempotency key %(key)s was used for another request", key=key)
        )
    replay_or_conflict(found, recorded=found.request_hash, fingerprint=fingerprint, key=key)
    sale = session.get(Sale, found.sale_id)
    assert sale is not None
    return NodeSaleResult(pos.SaleView.of(sale), found.seq, found.hash, replayed=True)


def _already_posted(session: Session, node: ShopNode, seq: int, key: str) -> NodeSale | None:
    return session.scalar(
        select(NodeSale)
        .where(
            or_(
                and_(NodeSale.node_id == node.id, NodeSale.seq == seq),
                NodeSale.idempotency_key == key,
            )
        )
        .order_by(NodeSale.id)
        .limit(1)
    )


def receive_offline_sale(
    session: Session,
    *,
    actor: User,
    now: datetime,
    tz: ZoneInfo,
    keyring: Keyring,
    request: OfflineSaleRequest,
    allowance_cap: int,
) -> NodeSaleResult:
    """Record one offline sale of the acting node, or answer the one it already recorded.

    In order: a retry (same seq or key, same request) answers the first result again and
    a different request under them is an idempotency conflict; then the sale must be the
    next link (seq `last_seq + 1`, prev_hash the head's hash), else 409 conflict; then the
    node's head moves by a guarded UPDATE (the node's row is the lock that queues its
    intakes), and the sale is recorded through the counter's own record_sale, its points
    from the allowance the county kept back (ledger.SpendMode.OFFLINE). One transaction:
    the edge commits it all or nothing.
    """
    node = node_of(session, actor, request.shop_code)
    shop_code = node.shop.code
    key = request.idempotency_key
    check_lines(request.lines)
    lines = [(normalize_scanned(sku), qty) for sku, qty in request.lines]
    for sku, qty in lines:
        check_quantity(qty)
        if not sku:
            raise ValidationFailed(errors={"lines": [_l("each line names a sku or a barcode")]})
    receipt_no = normalize_code(request.receipt_no)
    if not _receipt_pattern(shop_code).fullmatch(receipt_no):
        raise ValidationFailed(
            errors={
                "receipt_no": [
                    _l(
                        "a receipt number of the node's own series, like %(example)s",
                        example=f"{shop_code}-20261203-L0007",
                    )
                ]
            }
        )
    fields = chain.sale_fields(
        shop_code=shop_code,
        seq=request.seq,
        idempotency_key=key,
        receipt_no=receipt_no,
        made_at=request.made_at,
        household_id=request.household_id,
        card_digest=request.card_digest,
        lines=[{"sku": sku, "qty": qty} for sku, qty in lines],
    )
    fingerprint = request_fingerprint(prev_hash=request.prev_hash, **fields)

    found = _already_posted(session, node, request.seq, key)
    if found is not None:
        return _replay(session, node, found, fingerprint, key)
    if request.seq != node.last_seq + 1:
        raise Conflict(
            _l(
                "offline sale %(seq)s is out of order: the county expects sale %(expected)s "
                "of this node next",
                seq=request.seq,
                expected=node.last_seq + 1,
            ),
            expected_seq=node.last_seq + 1,
        )
    if request.prev_hash != node.last_hash:
        raise Conflict(
            _l(
                "offline sale %(seq)s does not follow the node's last sale: its prev_hash "
                "is not that sale's hash (broken chain)",
                seq=request.seq,
            ),
            expected_prev_hash=node.last_hash,
        )
    digest = chain.sale_hash(request.prev_hash, fields)
    # The guard repeats the checks above: a concurrent intake of the same node that got
    # there first leaves this one nothing to update (PostgreSQL re-reads the row after
    # waiting for its lock), and then it is a retry of that sale, or a conflict.
    moved = session.execute(
        update(ShopNode)
        .where(
            ShopNode.id == node.id,
            ShopNode.last_seq == request.seq - 1,
            ShopNode.last_hash == request.prev_hash,
        )
        .values(last_seq=request.seq, last_hash=digest, last_sync_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        found = _already_posted(session, node, request.seq, key)
        if found is not None:
            return _replay(session, node, found, fingerprint, key)
        raise Conflict(_l("another offline sale of this node was recorded first; try again"))
    session.expire(node)
    if session.scalar(select(Sale.id).where(Sale.receipt_no == receipt_no)):
        raise Conflict(_l("receipt number %(receipt_no)s is taken", receipt_no=receipt_no))

    result = pos.record_sale(
        session,
        actor=actor,
        now=now,
        tz=tz,
        keyring=keyring,
        shop_code=shop_code,
        lines=[pos.LineRequest(qty=qty, sku=sku) for sku, qty in lines],
        idempotency_key=key,
        household_id=request.household_id,
        offline=pos.OfflineSale(receipt_no=receipt_no, made_at=request.made_at, seq=request.seq),
        allowance_cap=allowance_cap,
    )
    if result.replayed:
        # A counter sale of the county already has this key.
        raise IdempotencyConflict(
            _l("idempotency key %(key)s was used for another request", key=key)
        )
    view = result.view
    session.add(
        NodeSale(
            node_id=node.id,
            seq=request.seq,
            idempotency_key=key,
            request_hash=fingerprint,
            sale_id=view.id,
            receipt_no=receipt_no,
            made_at=request.made_at,
            household_id=view.household_id,
            card_digest=request.card_digest,
            lines_json=json.dumps(fields["lines"], ensure_ascii=False, separators=(",", ":")),
            total_points=view.total_points,
            prev_hash=request.prev_hash,
            hash=digest,
            received_at=now,
        )
    )
    session.flush()
    return NodeSaleResult(view, request.seq, digest, replayed=False)

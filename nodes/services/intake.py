"""Offline sales reaching the county: in order, exactly once, chained, against the escrow."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, IdempotencyConflict, ValidationFailed
from core.idempotency import replay_or_conflict, request_fingerprint
from core.scanned import normalize_code, normalize_scanned
from inventory import services as inventory
from inventory.models import Product
from ledger.services import get_household
from member_cards.models import MemberCard
from member_cards.signing import Keyring
from nodes import chain
from nodes.models import NodeSale, ShopNode
from nodes.services.digests import card_digests
from nodes.services.registration import node_of
from pos import services as pos
from pos.models import Sale
from pos.services.limits import check_lines, check_quantity

# A node's clock this far ahead of the county's is wrong; its sale is dated the county's now.
MAX_CLOCK_AHEAD = timedelta(minutes=10)


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
    if found.sale_id is None:
        view = _nothing_sold(session, node.shop.code, found.receipt_no, found.household_id)
        return NodeSaleResult(view, found.seq, found.hash, replayed=True)
    sale = session.get(Sale, found.sale_id)
    assert sale is not None
    return NodeSaleResult(pos.SaleView.of(sale), found.seq, found.hash, replayed=True)


def _nothing_sold(
    session: Session, shop_code: str, receipt_no: str, household_id: int
) -> pos.SaleView:
    """The answer to an offline sale of which the county knew none of the goods."""
    household = get_household(session, household_id)
    return pos.SaleView(
        id=None,  # type: ignore[arg-type]
        receipt_no=receipt_no,
        shop_code=shop_code,
        household_id=household.id,
        total_points=0,
        balance_after=household.account.balance,
        lines=[],
        offline=True,
    )


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

    notes: list[str] = []
    made_at, original_made_at = request.made_at, None
    if made_at > now + MAX_CLOCK_AHEAD:
        # The node's clock ran ahead of the county's: the sale happened, at the latest, now.
        made_at, original_made_at = now, request.made_at
        notes.append(
            str(_l("the node's clock was ahead: it said %(made_at)s", made_at=request.made_at))
        )
    online = session.scalar(select(Sale).where(Sale.idempotency_key == key))
    if online is not None:
        # The node sent it online, the answer was lost and the clerk retried it offline.
        view = _same_online_sale(session, online, shop_code, request.household_id, lines, key)
        _record(
            session, node, request, fingerprint, receipt_no, made_at, original_made_at,
            fields, digest, now, sale_id=view.id, household_id=view.household_id,
            total_points=view.total_points, notes=notes, shortfall=0,
        )  # fmt: skip
        return NodeSaleResult(view, request.seq, digest, replayed=False)

    known, unknown = _split_known(session, lines)
    if unknown:
        notes.append(
            str(_l("goods the county does not know, left out: %(skus)s", skus=", ".join(unknown)))
        )
    if request.card_digest is not None and request.card_digest.lower() not in card_digests_of(
        session, keyring, request.household_id
    ):
        notes.append(str(_l("the card it names is no card of this household")))
    if not known:
        household = get_household(session, request.household_id)
        _record(
            session, node, request, fingerprint, receipt_no, made_at, original_made_at,
            fields, digest, now, sale_id=None, household_id=household.id, total_points=0,
            notes=notes, shortfall=0,
        )  # fmt: skip
        empty = _nothing_sold(session, shop_code, receipt_no, household.id)
        return NodeSaleResult(empty, request.seq, digest, replayed=False)
    if session.scalar(select(Sale.id).where(Sale.receipt_no == receipt_no)):
        raise Conflict(_l("receipt number %(receipt_no)s is taken", receipt_no=receipt_no))

    result = pos.record_sale(
        session,
        actor=actor,
        now=now,
        tz=tz,
        keyring=keyring,
        shop_code=shop_code,
        lines=[pos.LineRequest(qty=qty, sku=sku) for sku, qty in known],
        idempotency_key=key,
        household_id=request.household_id,
        offline=pos.OfflineSale(receipt_no=receipt_no, made_at=made_at, seq=request.seq),
        allowance_cap=allowance_cap,
    )
    view = result.view
    notes.extend(_forgiven_notes(result.forgiven, view.total_points))
    _record(
        session, node, request, fingerprint, receipt_no, made_at, original_made_at, fields,
        digest, now, sale_id=view.id, household_id=view.household_id,
        total_points=view.total_points, notes=notes, shortfall=result.forgiven.shortfall,
    )  # fmt: skip
    return NodeSaleResult(view, request.seq, digest, replayed=False)


def _record(
    session: Session,
    node: ShopNode,
    request: OfflineSaleRequest,
    fingerprint: str,
    receipt_no: str,
    made_at: datetime,
    original_made_at: datetime | None,
    fields: dict[str, Any],
    digest: str,
    now: datetime,
    *,
    sale_id: int | None,
    household_id: int,
    total_points: int,
    notes: list[str],
    shortfall: int,
) -> None:
    session.add(
        NodeSale(
            node_id=node.id,
            seq=request.seq,
            idempotency_key=request.idempotency_key,
            request_hash=fingerprint,
            sale_id=sale_id,
            receipt_no=receipt_no,
            made_at=made_at,
            household_id=household_id,
            card_digest=request.card_digest,
            lines_json=json.dumps(fields["lines"], ensure_ascii=False, separators=(",", ":")),
            total_points=total_points,
            prev_hash=request.prev_hash,
            hash=digest,
            received_at=now,
            exception="；".join(notes) or None,
            shortfall_points=shortfall,
            original_made_at=original_made_at,
        )
    )
    session.flush()


def _split_known(
    session: Session, lines: Sequence[tuple[str, int]]
) -> tuple[list[tuple[str, int]], list[str]]:
    """The lines whose sku the county knows (sold or not), and the skus it does not."""
    spellings = {s for sku, _qty in lines for s in inventory.sku_spellings(sku)}
    found = set(session.scalars(select(Product.sku).where(Product.sku.in_(spellings))))
    known = [(sku, qty) for sku, qty in lines if found.intersection(inventory.sku_spellings(sku))]
    unknown = [sku for sku, _qty in lines if not found.intersection(inventory.sku_spellings(sku))]
    return known, list(dict.fromkeys(unknown))


def _merged(pairs: Sequence[tuple[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for sku, qty in pairs:
        merged[sku] = merged.get(sku, 0) + qty
    return merged


def _same_online_sale(
    session: Session,
    sale: Sale,
    shop_code: str,
    household_id: int,
    lines: Sequence[tuple[str, int]],
    key: str,
) -> pos.SaleView:
    """The online sale under the offline sale's key, if it is the same sale; else a conflict.

    Same shop, same household, same goods in the same quantities: the node sent it online,
    lost the answer, and the clerk sold it again offline. It is charged once.
    """
    known, _unknown = _split_known(session, lines)
    resolved = {}
    if known:
        skus = {s for sku, _qty in known for s in inventory.sku_spellings(sku)}
        found = set(session.scalars(select(Product.sku).where(Product.sku.in_(skus))))
        for sku, qty in known:
            canonical = next(s for s in inventory.sku_spellings(sku) if s in found)
            resolved[canonical] = resolved.get(canonical, 0) + qty
    linked = session.scalar(select(NodeSale.id).where(NodeSale.sale_id == sale.id))
    if (
        sale.offline
        or linked is not None
        or sale.shop_code != shop_code
        or sale.household_id != household_id
        or len(known) != len(lines)
        or _merged([(line.sku, line.qty) for line in sale.lines]) != resolved
    ):
        raise IdempotencyConflict(
            _l("idempotency key %(key)s was used for another request", key=key)
        )
    return pos.SaleView.of(sale)


def _forgiven_notes(forgiven: pos.Forgiven, charged: int) -> list[str]:
    notes = []
    if forgiven.foreign:
        notes.append(str(_l("the household's home shop is not this node's shop")))
    if forgiven.household_inactive:
        notes.append(str(_l("the household was no longer active")))
    if forgiven.settled:
        notes.append(
            str(
                _l(
                    "the offline allowance no longer covered it: %(points)s points charged, "
                    "down to zero at most",
                    points=charged,
                )
            )
        )
    if forgiven.shortfall:
        notes.append(
            str(_l("%(points)s points the household could not pay", points=forgiven.shortfall))
        )
    if forgiven.inactive:
        notes.append(str(_l("goods no longer sold: %(skus)s", skus=", ".join(forgiven.inactive))))
    return notes


def card_digests_of(session: Session, keyring: Keyring, household_id: int) -> set[str]:
    """Every digest a card of the household (of any status) may have been synced under."""
    numbers = session.scalars(
        select(MemberCard.number).where(MemberCard.household_id == household_id)
    ).all()
    return {d for number in numbers for d in card_digests(keyring, household_id, number)}

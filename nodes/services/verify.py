"""The shop nodes' part of `ledger verify`: every node's chain of offline sales recomputed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.models import Shop
from nodes import chain
from nodes.models import NodeSale, ShopNode
from pos.models import Sale


@dataclass
class NodeChainReport:
    sales_checked: int = 0
    first_bad: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_node_chains(session: Session) -> NodeChainReport:
    """Recompute each node's chain in seq order: no gaps, each hash from its fields and its
    predecessor, the recorded sale still the one the node sent, and the node's head at the
    chain's end. The first bad link of the first broken node is named."""
    report = NodeChainReport()
    nodes = session.execute(
        select(ShopNode.id, ShopNode.last_seq, ShopNode.last_hash, Shop.code)
        .join(Shop, Shop.id == ShopNode.shop_id)
        .order_by(ShopNode.id)
    ).all()
    for node_id, last_seq, last_hash, shop_code in nodes:
        head, expected_seq = chain.GENESIS, 1
        rows = session.execute(
            select(NodeSale, Sale)
            .outerjoin(Sale, Sale.id == NodeSale.sale_id)
            .where(NodeSale.node_id == node_id)
            .order_by(NodeSale.seq)
        ).all()
        for link, sale in rows:
            report.sales_checked += 1
            problem = _check_link(shop_code, link, sale, head, expected_seq)
            if problem is not None:
                report.problems.append(f"shop {shop_code} offline sale {link.seq}: {problem}")
                if report.first_bad is None:
                    report.first_bad = {
                        "shop_code": shop_code,
                        "seq": link.seq,
                        "sale_id": link.sale_id,
                    }
            head, expected_seq = link.hash, link.seq + 1
        if (last_seq, last_hash) != (expected_seq - 1, head):
            report.problems.append(
                f"shop {shop_code}: the node's head does not match its last offline sale"
            )
            if report.first_bad is None:
                report.first_bad = {"shop_code": shop_code, "seq": last_seq, "sale_id": None}
    return report


def _check_link(
    shop_code: str, link: NodeSale, sale: Sale | None, head: str, expected_seq: int
) -> str | None:
    if link.seq != expected_seq:
        return f"a gap: sale {expected_seq} is missing"
    if link.prev_hash != head:
        return "does not follow the previous offline sale"
    fields = chain.sale_fields(
        shop_code=shop_code,
        seq=link.seq,
        idempotency_key=link.idempotency_key,
        receipt_no=link.receipt_no,
        # The hash covers the time the node sent, even when the county clamped it.
        made_at=link.original_made_at or link.made_at,
        household_id=link.household_id,
        card_digest=link.card_digest,
        lines=[{"sku": sku, "qty": qty} for sku, qty in json.loads(link.lines_json)],
    )
    if chain.sale_hash(link.prev_hash, fields) != link.hash:
        return "its hash does not match its contents"
    if sale is None:
        if link.sale_id is None and link.exception and link.total_points == 0:
            return None  # nothing of it the county knew: the link and its exception only
        return "its sale is missing"
    if not sale.offline:
        # The node's sale was an online sale whose answer it lost: the same sale, linked.
        if (sale.household_id, sale.total_points) != (link.household_id, link.total_points):
            return f"sale {sale.id} no longer matches the online sale it was linked to"
        return None
    recorded = (
        sale.receipt_no,
        sale.household_id,
        sale.created_at,
        bool(sale.offline),
        sale.total_points,
        sum(line.points for line in sale.lines),
    )
    sent = (
        link.receipt_no,
        link.household_id,
        link.made_at,
        True,
        link.total_points,
        # Its goods' worth: what was charged, and what the household could not pay.
        link.total_points + link.shortfall_points,
    )
    if recorded != sent:
        return f"sale {sale.id} no longer matches what the node sent and was charged"
    return None

"""What a shop node reports of itself (pending sales, offline since), kept for the office."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from nodes.models import ShopNode


def record_report(
    session: Session,
    *,
    node: ShopNode,
    now: datetime,
    pending_sales: int,
    offline_since: datetime | None,
    last_sync_at: datetime | None,
) -> ShopNode:
    """Keep the node's latest word on itself; an older last sync never replaces a newer."""
    node.pending_sales = pending_sales
    node.offline_since = offline_since
    node.reported_at = now
    if last_sync_at is not None and (node.last_sync_at is None or last_sync_at > node.last_sync_at):
        node.last_sync_at = last_sync_at
    session.flush()
    return node

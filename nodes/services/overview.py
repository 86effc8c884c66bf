"""The county office's view of the shop nodes: how each is doing, and what to look at."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from accounts.auth import User
from inventory.models import Shop
from ledger.models import Account, Household, Village
from nodes.models import NodeSale, ShopNode


@dataclass(frozen=True)
class NodeRow:
    """One node as the office's list shows it."""

    shop_code: str
    shop_name: str
    last_sync_at: datetime | None
    reported_at: datetime | None
    pending_sales: int
    offline_since: datetime | None
    last_seq: int
    reserved_points: int
    households: int
    exceptions: int


def list_nodes(session: Session, *, actor: User, allowance_cap: int) -> list[NodeRow]:
    """Every node, with the points held back for it and its flagged offline sales.

    Three grouped queries, whatever the number of households: the reserve is summed in
    SQL as the ledger's guard computes it, `min(cap, max(0, balance - floor))` a household.
    """
    actor.require_admin()
    cap = max(0, allowance_cap)
    above = Account.balance - Village.redemption_floor
    allowance = case(
        (Household.status != "active", literal(0)),
        (above <= 0, literal(0)),
        (above >= cap, literal(cap)),
        else_=above,
    )
    reserves = {
        shop_id: (int(total or 0), int(count))
        for shop_id, total, count in session.execute(
            select(Village.home_shop_id, func.sum(allowance), func.count(Household.id))
            .join(Household, Household.village_id == Village.id)
            .join(Account, Account.household_id == Household.id)
            .where(Village.home_shop_id.in_(select(ShopNode.shop_id)))
            .group_by(Village.home_shop_id)
        )
    }
    exceptions = dict(
        session.execute(
            select(NodeSale.node_id, func.count(NodeSale.id))
            .where(NodeSale.exception.is_not(None))
            .group_by(NodeSale.node_id)
        ).all()
    )
    rows = session.execute(
        select(ShopNode, Shop).join(Shop, Shop.id == ShopNode.shop_id).order_by(Shop.code)
    ).all()
    out = []
    for node, shop in rows:
        reserved, households = reserves.get(shop.id, (0, 0))
        out.append(
            NodeRow(
                shop_code=shop.code,
                shop_name=shop.name,
                last_sync_at=node.last_sync_at,
                reported_at=node.reported_at,
                pending_sales=node.pending_sales,
                offline_since=node.offline_since,
                last_seq=node.last_seq,
                reserved_points=reserved,
                households=households,
                exceptions=int(exceptions.get(node.id, 0)),
            )
        )
    return out


def list_exceptions(session: Session, *, actor: User, limit: int = 50) -> Sequence[NodeSale]:
    """The latest offline sales the county took without honouring them as sold."""
    actor.require_admin()
    return session.scalars(
        select(NodeSale)
        .where(NodeSale.exception.is_not(None))
        .order_by(NodeSale.id.desc())
        .limit(limit)
    ).all()

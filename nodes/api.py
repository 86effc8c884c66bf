"""JSON API of the shop nodes: a node's own state, and the offline sales it posts."""

from __future__ import annotations

from typing import Any

from flask import current_app

from accounts.auth import Role, api_actor, roles_required
from core.api import Blueprint
from core.db import db, transactional, utcnow
from core.errors import DomainError, domain_problem
from core.timeutil import local_tz
from member_cards.signing import keyring_from_config
from nodes import schemas as s
from nodes import services

blp = Blueprint("nodes_api", __name__, url_prefix="/api/v1", description="Shop nodes")


@blp.route("/node", methods=["GET"])
@roles_required(Role.SHOP_NODE)
@blp.response(200, s.NodeOut)
def node_state() -> Any:
    """The acting node's chain head: the next offline sale carries seq last_seq + 1."""
    node = services.node_of(db.session, api_actor())
    return {
        "shop": node.shop,
        "last_seq": node.last_seq,
        "last_hash": node.last_hash,
        "last_sync_at": node.last_sync_at,
        "offline_allowance_points": current_app.config["OFFLINE_ALLOWANCE_POINTS"],
    }


@blp.route("/node/sales", methods=["POST"])
@roles_required(Role.SHOP_NODE)
@blp.arguments(s.OfflineSaleIn)
@blp.response(201, s.OfflineSaleOut)
@transactional()
def post_offline_sale(data: dict[str, Any]) -> Any:
    """An offline sale of the node's shop, in order and exactly once; a retry answers it again."""
    return _receive(data)


@blp.route("/node/sales/batch", methods=["POST"])
@roles_required(Role.SHOP_NODE)
@blp.arguments(s.OfflineSaleBatchIn)
@blp.response(200, s.OfflineSaleBatchOut)
@transactional()
def post_offline_sales(data: dict[str, Any]) -> Any:
    """Offline sales in order, each as POST /node/sales takes it, in one transaction.

    The drain after a long cut: one round trip and one commit for many sales. The first
    sale refused ends the batch; the ones before it stand, and `refused` is the problem
    its own POST would have answered (a retry from it is a retry like any other).
    """
    taken: list[dict[str, Any]] = []
    refused = None
    for sale in data["sales"]:
        try:
            with db.session.begin_nested():
                taken.append(_receive(sale))
        except DomainError as exc:
            refused = domain_problem(exc)
            break
    return {"sales": taken, "refused": refused}


def _receive(data: dict[str, Any]) -> dict[str, Any]:
    result = services.receive_offline_sale(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        tz=local_tz(),
        keyring=keyring_from_config(current_app.config),
        request=services.OfflineSaleRequest(
            seq=data["seq"],
            prev_hash=data["prev_hash"],
            idempotency_key=data["idempotency_key"],
            receipt_no=data["receipt_no"],
            made_at=data["made_at"],
            household_id=data["household_id"],
            lines=[(line["sku"], line["qty"]) for line in data["lines"]],
            card_digest=data["card_digest"],
            shop_code=data["shop_code"],
        ),
        allowance_cap=current_app.config["OFFLINE_ALLOWANCE_POINTS"],
    )
    view = result.sale
    return {
        "id": view.id,
        "receipt_no": view.receipt_no,
        "shop_code": view.shop_code,
        "household_id": view.household_id,
        "total_points": view.total_points,
        "balance_after": view.balance_after,
        "lines": view.lines,
        "offline": True,
        "seq": result.seq,
        "hash": result.hash,
    }


@blp.route("/node/feed", methods=["GET"])
@roles_required(Role.SHOP_NODE)
@blp.arguments(s.FeedQuery, location="query")
@blp.response(200, s.FeedOut)
def node_feed(query: dict[str, Any]) -> Any:
    """What the node needs to sell offline, as changes since its cursor, in pages."""
    node = services.node_of(db.session, api_actor())
    return services.read_feed(
        db.session,
        node=node,
        cursor=query["cursor"],
        limit=query["limit"],
        now=utcnow(),
        allowance_cap=current_app.config["OFFLINE_ALLOWANCE_POINTS"],
        max_hours=current_app.config["OFFLINE_MAX_HOURS"],
        keyring=keyring_from_config(current_app.config),
    )


@blp.route("/node/report", methods=["PUT"])
@roles_required(Role.SHOP_NODE)
@blp.arguments(s.ReportIn)
@blp.response(200, s.ReportOut)
@transactional()
def node_report(data: dict[str, Any]) -> Any:
    """The node's word on itself: sales waiting to reach the county, offline since when."""
    node = services.node_of(db.session, api_actor())
    return services.record_report(
        db.session,
        node=node,
        now=utcnow(),
        pending_sales=data["pending_sales"],
        offline_since=data["offline_since"],
        last_sync_at=data["last_sync_at"],
    )

"""Registering a shop's node: its `shop_node` user, its chain's head, and a token for it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.auth import Role, User, create_user, issue_token
from core.errors import Conflict, Forbidden
from inventory import services as inventory
from inventory.models import Shop
from nodes.chain import GENESIS
from nodes.models import ShopNode


def register_node(
    session: Session, *, now: datetime, shop_code: str, username: str, token_ttl: timedelta
) -> tuple[ShopNode, str]:
    """A node for the shop, acting as a new `shop_node` user; the node and its token.

    One node per shop: the county holds each household's offline allowance for its home
    shop's node, and two nodes selling one allowance could overdraw it. The user signs in
    by token only; its password is random and shown to no one.
    """
    shop = inventory.get_shop(session, shop_code)
    if session.scalar(select(ShopNode.id).where(ShopNode.shop_id == shop.id)):
        raise Conflict(_l("shop %(code)s already has a node", code=shop.code))
    user = create_user(
        session,
        username=username,
        password=secrets.token_urlsafe(24),
        role=Role.SHOP_NODE,
        shop_code=shop.code,
    )
    node = ShopNode(
        shop_id=shop.id, user_id=user.id, registered_at=now, last_seq=0, last_hash=GENESIS
    )
    session.add(node)
    session.flush()
    token, _row = issue_token(session, user, now=now, ttl=token_ttl)
    return node, token


def node_of(session: Session, actor: User, shop_code: str | None = None) -> ShopNode:
    """The node the acting `shop_node` user runs, refused for anyone else or another shop."""
    shop_code = actor.shop_code if shop_code is None else shop_code
    actor.require_shop_node(shop_code or "")
    node = session.scalar(
        select(ShopNode).join(Shop, Shop.id == ShopNode.shop_id).where(Shop.code == shop_code)
    )
    if node is None or node.user_id != actor.id:
        raise Forbidden(_l("you are not the registered node of shop %(code)s", code=shop_code))
    return node

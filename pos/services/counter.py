"""At the counter before a sale: the household behind a card, the goods behind a code, the shop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import column, select, table
from sqlalchemy.orm import Session

from accounts.auth import Role, User, authenticate_token
from core.errors import NotFound
from inventory import services as inventory
from inventory.models import Shop
from ledger import services as ledger
from ledger.models import Household
from member_cards import services as cards
from member_cards.signing import Keyring


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
    # Kept back for the village's home shop node (ledger.SpendMode): online sales leave
    # `floor + reserve_cap`; `reserved` is what that holds back now.
    reserve_cap: int = 0
    reserved: int = 0
    reserved_for: str | None = None


# --- the shop's node -----------------------------------------------------------------

# The header a shop node adds to every request it passes through to the county.
NODE_TOKEN_HEADER = "X-Shop-Node-Token"
# The nodes' table by name: the counter does not import the nodes package built on it.
_SHOP_NODES = table("shop_nodes", column("shop_id"), column("user_id"))
_SHOPS = table("shops", column("id"), column("code"))


def is_node_of(session: Session, *, token: str | None, shop_code: str, now: datetime) -> bool:
    """Whether `token` is a live token of the registered node of the shop.

    Only then may a sale at the shop spend the reserve held for that node: the node alone
    knows whether it is selling that reserve offline.
    """
    if not token or not token.strip():
        return False
    user = authenticate_token(session, token.strip(), now=now)
    if user is None or user.role != Role.SHOP_NODE or user.shop_code != shop_code:
        return False
    node_user = session.scalar(
        select(_SHOP_NODES.c.user_id)
        .select_from(_SHOP_NODES.join(_SHOPS, _SHOPS.c.id == _SHOP_NODES.c.shop_id))
        .where(_SHOPS.c.code == shop_code)
    )
    return node_user == user.id


# --- the customer -------------------------------------------------------------------


def _customer(
    session: Session,
    household: Household,
    card_serial: str | None,
    allowance_cap: int,
    shop_code: str,
    via_node: bool = False,
) -> Customer:
    names = [m.name for m in household.members]
    floor = household.village.redemption_floor
    balance = household.account.balance
    cap, shop_name = ledger.offline_escrow(
        session, household.village, allowance_cap, at_shop=shop_code, via_node=via_node
    )
    reserved = min(cap, max(balance - floor, 0))
    return Customer(
        household_id=household.id,
        head_name=household.head_name,
        members=names,
        village_name=household.village.name,
        balance=balance,
        floor=floor,
        spendable=max(balance - floor - reserved, 0),
        card_serial=card_serial,
        reserve_cap=cap,
        reserved=reserved,
        reserved_for=shop_name,
    )


def find_customer(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    card_payload: str,
    keyring: Keyring,
    allowance_cap: int = ledger.DEFAULT_OFFLINE_ALLOWANCE,
    via_node: bool = False,
) -> Customer:
    """The household behind a card scanned at the counter (invalid, unknown, revoked refused).

    `via_node`: asked through the home shop's own node, which may spend the reserve (the
    same rule as record_sale's).
    """
    actor.require_shop_staff(shop_code)
    card = cards.resolve_card(session, payload=card_payload, keyring=keyring)
    return _customer(session, card.household, card.serial, allowance_cap, shop_code, via_node)


# --- the goods ----------------------------------------------------------------------


def find_goods(session: Session, *, actor: User, shop_code: str, code: str) -> Goods:
    """The product behind a code scanned or typed at the counter: its barcode, else its sku.

    One answer in place of the two look-ups a counter would otherwise make, with the
    shop's stock, so it can warn of goods the shelf no longer holds while still scanning.
    """
    actor.require_shop_staff(shop_code)
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


# --- the shop -----------------------------------------------------------------------


def counter_shop(session: Session, *, actor: User, shop_code: str | None) -> Shop:
    """The shop whose counter the actor works: their own, or any for the county office."""
    code = actor.shop_code if not actor.is_admin else shop_code
    if not code:
        raise NotFound(_l("choose the shop whose counter to open"))
    actor.require_shop_staff(code)
    return inventory.get_shop(session, code)


def counter_shops(session: Session, *, actor: User) -> Sequence[Shop]:
    """The shops whose counter the actor may open: every shop for the county office."""
    if actor.is_admin:
        return inventory.list_shops(session)
    if not actor.shop_code:
        return []
    actor.require_shop_staff(actor.shop_code)
    return [inventory.get_shop(session, actor.shop_code)]

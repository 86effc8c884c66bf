"""What a shop node needs to sell offline, as changes since its cursor (GET /api/v1/node/feed).

OWNER: helper A. Contract (the node's syncer, nodes/local/sync.py, relies on it):

GET /api/v1/node/feed?cursor=<opaque>&limit=<1..5000, default 2000>  (role shop_node,
the node's own token) -> 200
{
  "cursor": "<opaque text: pass it back next time>",
  "more": true|false,            # true: call again at once, this page was cut at `limit`
  "full": true|false,            # true: the cursor was empty, unreadable or too old: this
                                 # and the following pages (until more=false) are the whole
                                 # state; the node replaces its tables when `more` goes false
  "now": "<county time, ISO with offset>",   # for the node's clock-skew check
  "shop": {"code", "name"},
  "offline_allowance_points": 200,
  "offline_max_hours": 72,
  "products": [{"sku", "barcode", "name", "unit", "points_price", "active",
                "allow_negative_stock", "on_hand"}],     # on_hand: this shop's stock
  "households": [{"id", "village_code", "village_name", "head_name", "members": [...],
                  "active", "floor", "balance", "allowance"}],
                  # only households of villages whose home shop is the node's shop;
                  # allowance = min(offline_allowance_points, max(0, balance - floor))
  "cards": [{"digest", "household_id", "serial", "active"}],
                  # digest = sha256 hex of the card's payload text (member_cards.signing);
                  # active false: revoked (the node refuses it offline)
  "users": [{"username", "role", "shop_code", "active"}]   # the shop's staff + admins
}
Changes since the cursor: a household appears again when its balance, floor, members,
active flag or village changed; a product when it or this shop's stock of it changed; a
card when it was issued or revoked. Late commits (ids taken before a slower transaction
commits) are caught by re-sending a small window behind the cursor (only when a late row
filled it: the cursor counts the rows in the window), and time-marked rows (households,
villages, products: `updated_at`) within 5 s behind it; the node upserts, so a repeat is
harmless.

An inactive household's allowance is 0. Cards: one row per card and accepted signing
key (a card printed before a key change carries the old key's payload, still accepted at
the counter), so a card may appear under several digests. A page's cards are those of
its households. Users come on the first page of each round (a handful of rows).
Households of a village that stops being the node's are not withdrawn by an incremental
page: they fall out at the next full sync (an empty cursor).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, union
from sqlalchemy.orm import Session

from accounts.auth import Role, User
from inventory.models import Product, Shop, StockLevel, StockMovement
from ledger.models import Account, Household, HouseholdMember, Transfer, Village
from member_cards import signing
from member_cards.models import CardStatus, MemberCard, MemberCardEvent
from member_cards.signing import Keyring
from nodes.models import ShopNode
from nodes.services.digests import accepted_rings, payload_digest

CURSOR_VERSION = 1
MAX_LIMIT = 5000
DEFAULT_LIMIT = 2000
# Late commits: an id taken before a slower transaction committed can land behind the
# cursor. The cursor counts the rows in this window behind each mark; when the count grew,
# the window is sent again (the node upserts the repeats).
ID_WINDOW = 1000
TIME_WINDOW = timedelta(seconds=5)
_MARKS = ("t", "m", "c", "e")


# --- the cursor ---------------------------------------------------------------------


def encode_cursor(state: dict[str, Any]) -> str:
    text = json.dumps(state, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(text: str | None, node_id: int) -> dict[str, Any] | None:
    """The state a cursor carries, or None (start a full sync) for anything not ours."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        state = json.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(state, dict) or state.get("v") != CURSOR_VERSION:
        return None
    if state.get("n") != node_id or not isinstance(state.get("full"), bool):
        return None
    if not _is_int(state.get("a")):
        return None
    if state["a"] > 0 and not _marks_ok(state.get("k")):
        # Mid-round: the marks the round started from are what its last page hands on.
        return None
    if not state["full"] and not _marks_ok(state.get("f")):
        return None
    return state


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _marks_ok(marks: Any) -> bool:
    if not isinstance(marks, dict) or not all(_is_int(marks.get(k)) for k in _MARKS):
        return False
    window = marks.get("w")
    if not isinstance(window, list) or len(window) != len(_MARKS):
        return False
    if not all(_is_int(v) for v in window):
        return False
    try:
        datetime.fromisoformat(marks["u"])
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _streams(shop_id: int) -> dict[str, tuple[Any, list[Any]]]:
    """Each id-ordered change stream: its id column and the rows of it the node cares for."""
    return {
        "t": (Transfer.id, []),
        "m": (StockMovement.id, [StockMovement.shop_id == shop_id]),
        "c": (MemberCard.id, []),
        "e": (MemberCardEvent.id, []),
    }


def _window_count(column: Any, where: list[Any], top: int) -> Any:
    return (
        select(func.count(column))
        .where(*where, column > top - ID_WINDOW, column <= top)
        .scalar_subquery()
    )


def _marks(session: Session, shop_id: int, now: datetime) -> dict[str, Any]:
    """Where every change stream stands now, and how many rows lie in the window behind."""
    streams = _streams(shop_id)
    tops = session.execute(
        select(
            *[
                select(func.max(column)).where(*where).scalar_subquery()
                for column, where in streams.values()
            ]
        )
    ).one()
    marks: dict[str, Any] = {k: int(v or 0) for k, v in zip(streams, tops, strict=True)}
    counts = session.execute(
        select(*[_window_count(column, where, marks[k]) for k, (column, where) in streams.items()])
    ).one()
    marks["w"] = [int(v or 0) for v in counts]
    marks["u"] = now.isoformat()
    return marks


def _since(session: Session, shop_id: int, marks: dict[str, Any]) -> dict[str, Any]:
    """Where the previous round left each stream, moved back by the late-commit window
    only for a stream whose window gained rows since (a transaction that had taken its ids
    before the marks committed after them): an idle call re-sends nothing."""
    streams = _streams(shop_id)
    counts = session.execute(
        select(
            *[_window_count(column, where, int(marks[k])) for k, (column, where) in streams.items()]
        )
    ).one()
    since: dict[str, Any] = {}
    for k, seen, now_count in zip(streams, marks["w"], counts, strict=True):
        late = int(now_count or 0) != seen
        since[k] = max(0, int(marks[k]) - ID_WINDOW) if late else int(marks[k])
    since["u"] = datetime.fromisoformat(marks["u"]) - TIME_WINDOW
    return since


# --- the page -----------------------------------------------------------------------


def read_feed(
    session: Session,
    *,
    node: ShopNode,
    cursor: str | None,
    limit: int,
    now: datetime,
    allowance_cap: int,
    max_hours: int,
    keyring: Keyring,
    tz: ZoneInfo | None = None,
) -> dict[str, Any]:
    """One page of what the node needs to sell offline (module docstring: the contract).

    Set-based: a page costs a fixed number of queries whatever its size, and an idle call
    (nothing changed) a few index range scans that find nothing.
    """
    limit = max(1, min(MAX_LIMIT, limit))
    shop = node.shop
    state = decode_cursor(cursor, node.id)
    if state is None:
        state = {"v": CURSOR_VERSION, "n": node.id, "full": True, "a": 0, "f": None}
    if state["a"] == 0 or state.get("k") is None:
        # A new round: what changes from here on is the next round's.
        state["k"] = _marks(session, shop.id, now)
    full = state["full"]
    since = None if full else _since(session, shop.id, state["f"])
    first = state["a"] == 0

    households, more = _households(session, shop.id, since, state["a"], limit, allowance_cap)
    cards = _cards(session, shop.id, households, keyring) if households else []
    if more:
        next_state = {**state, "a": households[-1]["id"]}
    else:
        next_state = {"v": CURSOR_VERSION, "n": node.id, "full": False, "a": 0, "f": state["k"]}
    return {
        "cursor": encode_cursor(next_state),
        "more": more,
        "full": full,
        "now": now.astimezone(tz) if tz is not None else now,
        "shop": {"code": shop.code, "name": shop.name},
        "offline_allowance_points": allowance_cap,
        "offline_max_hours": max_hours,
        "products": _products(session, shop, since) if first else [],
        "households": households,
        "cards": cards,
        "users": _users(session, shop.code) if first else [],
    }


def _changed_households(since: dict[str, Any]) -> Any:
    """Ids of households whose balance, record, village or cards changed since the marks."""
    return union(
        select(Account.household_id)
        .join(Transfer, Transfer.chain_account_id == Account.id)
        .where(Transfer.id > since["t"], Account.household_id.is_not(None)),
        select(Household.id).where(Household.updated_at > since["u"]),
        select(Household.id)
        .join(Village, Village.id == Household.village_id)
        .where(Village.updated_at > since["u"]),
        select(MemberCard.household_id).where(MemberCard.id > since["c"]),
        select(MemberCard.household_id)
        .join(MemberCardEvent, MemberCardEvent.card_id == MemberCard.id)
        .where(MemberCardEvent.id > since["e"]),
    )


def _households(
    session: Session,
    shop_id: int,
    since: dict[str, Any] | None,
    after: int,
    limit: int,
    allowance_cap: int,
) -> tuple[list[dict[str, Any]], bool]:
    stmt = (
        select(
            Household.id,
            Household.head_name,
            Household.status,
            Village.code,
            Village.name,
            Village.redemption_floor,
            Account.balance,
        )
        .join(Village, Village.id == Household.village_id)
        .join(Account, Account.household_id == Household.id)
        .where(Village.home_shop_id == shop_id, Household.id > after)
        .order_by(Household.id)
        .limit(limit + 1)
    )
    if since is not None:
        stmt = stmt.where(Household.id.in_(_changed_households(since)))
    rows = session.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return [], False
    members: dict[int, list[str]] = {}
    # One query for the page's members, not one per household.
    for household_id, name in session.execute(
        select(HouseholdMember.household_id, HouseholdMember.name)
        .where(_page(HouseholdMember.household_id, [row.id for row in rows]))
        .order_by(HouseholdMember.household_id, HouseholdMember.position, HouseholdMember.id)
    ):
        members.setdefault(household_id, []).append(name)
    cap = max(0, allowance_cap)
    out = []
    for row in rows:
        active = row.status == "active"
        floor, balance = int(row.redemption_floor), int(row.balance)
        out.append(
            {
                "id": row.id,
                "village_code": row.code,
                "village_name": row.name,
                "head_name": row.head_name,
                "members": members.get(row.id, []),
                "active": active,
                "floor": floor,
                "balance": balance,
                "allowance": min(cap, max(0, balance - floor)) if active else 0,
            }
        )
    return out, more


def _page(column: Any, ids: list[int]) -> Any:
    """`column` among a page's household ids (ascending): a range when they lie dense (a
    full sync's page), else the ids themselves (an incremental page may be sparse)."""
    if ids[-1] - ids[0] + 1 <= 2 * len(ids):
        return column.between(ids[0], ids[-1])
    return column.in_(ids)


def _cards(
    session: Session, shop_id: int, households: list[dict[str, Any]], keyring: Keyring
) -> list[dict[str, Any]]:
    """The cards of the page's households (only those: another shop's are unknown offline)."""
    ids = {h["id"] for h in households}
    rows = session.execute(
        select(MemberCard.household_id, MemberCard.number, MemberCard.serial, MemberCard.status)
        .where(_page(MemberCard.household_id, sorted(ids)))
        .order_by(MemberCard.household_id, MemberCard.number)
    ).all()
    rings = accepted_rings(keyring)
    out = []
    for row in rows:
        if row.household_id not in ids:
            continue
        for ring in rings:
            out.append(
                {
                    "digest": payload_digest(signing.encode(ring, row.household_id, row.number)),
                    "household_id": row.household_id,
                    "serial": row.serial,
                    "active": row.status == CardStatus.ACTIVE,
                }
            )
    return out


def _products(session: Session, shop: Shop, since: dict[str, Any] | None) -> list[dict[str, Any]]:
    stmt = (
        select(
            Product.sku,
            Product.barcode,
            Product.name,
            Product.unit,
            Product.points_price,
            Product.active,
            func.coalesce(StockLevel.on_hand, 0),
        )
        .outerjoin(
            StockLevel, (StockLevel.product_id == Product.id) & (StockLevel.shop_id == shop.id)
        )
        .order_by(Product.sku)
    )
    if since is not None:
        moved = select(StockMovement.product_id).where(
            StockMovement.shop_id == shop.id, StockMovement.id > since["m"]
        )
        stmt = stmt.where(or_(Product.updated_at > since["u"], Product.id.in_(moved)))
    return [
        {
            "sku": sku,
            "barcode": barcode,
            "name": name,
            "unit": unit,
            "points_price": price,
            "active": active,
            "allow_negative_stock": shop.allow_negative_stock,
            "on_hand": int(on_hand),
        }
        for sku, barcode, name, unit, price, active, on_hand in session.execute(stmt)
    ]


def _users(session: Session, shop_code: str) -> list[dict[str, Any]]:
    """The shop's staff and the county office: who may sign in at the node."""
    rows = session.execute(
        select(User.username, User.role, User.shop_code, User.active)
        .where(or_(User.shop_code == shop_code, User.role == Role.ADMIN))
        .order_by(User.username)
    ).all()
    return [
        {"username": u, "role": role, "shop_code": code, "active": active}
        for u, role, code, active in rows
    ]

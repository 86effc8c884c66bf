"""The node's own tables: what it synced from the county, its outbox, its state, its prints.

On their own metadata (NodeBase), never the county's: the county's migrations and drift
test must not see them. Every name starts with `node_`, since the county's tables
(`products`, `households`, `users`...) live in the same SQLite file for the local app.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db import NAMING_CONVENTION, UTCDateTime


class NodeBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class NodeProduct(NodeBase):
    """A product as the feed gave it, with this shop's stock as the node last knew it."""

    __tablename__ = "node_products"

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    barcode: Mapped[str | None] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(16), default="")
    points_price: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
    allow_negative_stock: Mapped[bool] = mapped_column(default=False)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)


class NodeHousehold(NodeBase):
    """A household of the shop's villages: who, and what it may spend offline.

    `allowance` is the feed's (or the last online sale's) figure; the offline sales the
    county has not yet reflected in it are subtracted when selling (offline.py).
    """

    __tablename__ = "node_households"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    village_code: Mapped[str] = mapped_column(String(32), default="")
    village_name: Mapped[str] = mapped_column(String(100), default="")
    head_name: Mapped[str] = mapped_column(String(100), default="")
    members: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    floor: Mapped[int] = mapped_column(Integer, default=0)
    balance: Mapped[int] = mapped_column(Integer, default=0)
    allowance: Mapped[int] = mapped_column(Integer, default=0)
    # When the county's figures above were last taken in (local clock).
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NodeCard(NodeBase):
    """A member card by the digest of its payload; the signing key never leaves the county."""

    __tablename__ = "node_cards"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    household_id: Mapped[int] = mapped_column(Integer, index=True)
    serial: Mapped[str] = mapped_column(String(24), default="")
    active: Mapped[bool] = mapped_column(default=True)


class OutboxSale(NodeBase):
    """One offline sale, a link of the node's chain, until the county has it (and after)."""

    __tablename__ = "node_outbox"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    # The counter request's fingerprint (core.idempotency): a retry must match it.
    request_hash: Mapped[str] = mapped_column(String(64))
    receipt_no: Mapped[str] = mapped_column(String(64), unique=True)
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)
    household_id: Mapped[int] = mapped_column(Integer, index=True)
    card_digest: Mapped[str | None] = mapped_column(String(64))
    # [{sku, name, qty, points_each, points}] at the node's prices.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total_points: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The 201 body the counter was given, answered again to a retry of the key.
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    county_sale_id: Mapped[int | None] = mapped_column(Integer)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    username: Mapped[str] = mapped_column(String(64), default="")


class NodeState(NodeBase):
    """Key-value state: cursor, last sync, offline since, clock skew, chain head, counters."""

    __tablename__ = "node_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class PrintQueueItem(NodeBase):
    """An offline sale's receipt the node prints itself, once (printer.py)."""

    __tablename__ = "node_print_queue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sale_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16), default="receipt")
    # queued -> sending -> printed; a crash while sending leaves it failed, never reprinted.
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AcceptedSignIn(NodeBase):
    """A person the county let in through this node lately (nodes.local.signins)."""

    __tablename__ = "node_accepted_sign_ins"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)

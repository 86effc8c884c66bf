"""Shop nodes and the offline sales they posted, each a link of the node's hash chain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.auth import User
from core.db import UTCDateTime, db, utcnow
from inventory.models import Shop
from nodes.chain import GENESIS


class ShopNode(db.Model):
    """A shop's node: one per shop, acting as its own `shop_node` user.

    `last_seq` and `last_hash` are the head of its chain of offline sales: the next sale
    must carry seq `last_seq + 1` and prev_hash `last_hash`.
    """

    __tablename__ = "shop_nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the node last reported of itself (PUT /api/v1/node/report), for the office.
    pending_sales: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    offline_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    shop: Mapped[Shop] = relationship(lazy="joined")
    user: Mapped[User] = relationship(lazy="joined")


class NodeSale(db.Model):
    """One offline sale as the node sent it, the sale it became, and its link in the chain.

    Never updated: the unique (node, seq) and key are what make each offline sale reach
    the county exactly once, however often the node retries it.
    """

    __tablename__ = "node_sales"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("shop_nodes.id"))
    seq: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    # Fingerprint of the whole request: a retry must match it to be answered again.
    request_hash: Mapped[str] = mapped_column(String(64))
    # None only when nothing of the sale could be recorded (every product unknown).
    sale_id: Mapped[int | None] = mapped_column(ForeignKey("sales.id"), unique=True)
    receipt_no: Mapped[str] = mapped_column(String(64))
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    card_digest: Mapped[str | None] = mapped_column(String(128))
    # The lines as the node sent them: canonical JSON [[sku, qty], ...] (nodes.chain).
    lines_json: Mapped[str] = mapped_column(Text)
    # What the county charged for it (its prices), for verify to hold the sale to.
    total_points: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Why the office must look at it: the county took it although it could not honour it
    # as sold (the goods had left the shop). None: an ordinary offline sale.
    exception: Mapped[str | None] = mapped_column(Text)
    # Points the household could not cover even down to zero: owed, not charged.
    shortfall_points: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The node's own time when it lay in the county's future and was clamped to its now.
    original_made_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("node_id", "seq"),)

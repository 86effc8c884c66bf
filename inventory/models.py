"""Inventory tables: shops, products, cached on-hand per shop, and the movement journal."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.auth import User
from core.db import UTCDateTime, db, utcnow


class MovementKind(enum.StrEnum):
    RECEIPT = "receipt"
    SALE = "sale"
    RETURN = "return"
    ADJUSTMENT = "adjustment"
    COUNT = "count"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"


class OperationKind(enum.StrEnum):
    RECEIPT = "receipt"
    ADJUSTMENT = "adjustment"
    COUNT = "count"
    TRANSFER = "transfer"
    SALE = "sale"
    RETURN = "return"


class AdjustmentReason(enum.StrEnum):
    DAMAGED = "damaged"
    EXPIRED = "expired"
    FOUND = "found"
    DONATED = "donated"


class Shop(db.Model):
    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    allow_negative_stock: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Product(db.Model):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(16))
    points_price: Mapped[int] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(50))
    # The unique constraint's index is what a scan at the counter looks up.
    barcode: Mapped[str | None] = mapped_column(String(13), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The shop node's feed re-sends a product changed since its cursor (nodes.services.feed).
    updated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, index=True
    )

    __table_args__ = (CheckConstraint("points_price > 0", name="price_positive"),)


class InStoreBarcode(db.Model):
    """Every in-store code ever given to a product; kept after the product drops it.

    A code printed on old labels must never come to mean another product, so the next
    code is always past the highest one here, and a released code cannot be taken again.
    """

    __tablename__ = "in_store_barcodes"

    code: Mapped[str] = mapped_column(String(13), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    allocated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StockLevel(db.Model):
    """On-hand of one product at one shop, changed with each movement in one transaction."""

    __tablename__ = "stock_levels"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reorder_level: Mapped[int] = mapped_column(Integer, default=0)

    product: Mapped[Product] = relationship(lazy="joined")

    __table_args__ = (CheckConstraint("reorder_level >= 0", name="reorder_level_not_negative"),)


class StockOperation(db.Model):
    """One request that moves goods: its idempotency key, what was asked, who and when.

    Its movements (one per line, two per transfer line) are the journal; the operation is
    what a replayed request answers from.
    """

    __tablename__ = "stock_operations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), index=True)
    # The receiving shop of a transfer.
    other_shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id"))
    reference: Mapped[str | None] = mapped_column(String(100))
    supplier: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    shop: Mapped[Shop] = relationship(foreign_keys=[shop_id], lazy="joined")
    other_shop: Mapped[Shop | None] = relationship(foreign_keys=[other_shop_id], lazy="joined")
    actor: Mapped[User | None] = relationship("User")
    movements: Mapped[list[StockMovement]] = relationship(
        back_populates="operation", order_by="StockMovement.id"
    )
    count_lines: Mapped[list[StockCountLine]] = relationship(order_by="StockCountLine.id")

    __table_args__ = (
        CheckConstraint("other_shop_id IS NULL OR other_shop_id <> shop_id", name="two_shops"),
    )


class StockMovement(db.Model):
    """Append-only journal: on-hand is always the sum of a shop's movements of a product.

    Reference, user and time repeat the operation's so that each row reads on its own.
    """

    __tablename__ = "stock_movements"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    operation_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("stock_operations.id"), index=True
    )
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    product: Mapped[Product] = relationship(lazy="joined")
    shop: Mapped[Shop] = relationship()
    operation: Mapped[StockOperation] = relationship(back_populates="movements")
    actor: Mapped[User | None] = relationship("User")

    __table_args__ = (
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
        Index("ix_stock_movements_shop_id_product_id_id", "shop_id", "product_id", "id"),
        Index("ix_stock_movements_shop_id_id", "shop_id", "id"),
    )


class StockCountLine(db.Model):
    """One counted line of a stock take, matching or not; a mismatch is also a movement."""

    __tablename__ = "stock_count_lines"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    operation_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("stock_operations.id")
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    expected: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)

    product: Mapped[Product] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("counted >= 0", name="counted_not_negative"),
        UniqueConstraint("operation_id", "product_id"),
    )

    @property
    def delta(self) -> int:
        return self.counted - self.expected

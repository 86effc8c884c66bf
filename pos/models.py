"""Counter tables: sales and their lines, returns and voids, and receipt number counters."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import UTCDateTime, db, utcnow


class SaleStatus(enum.StrEnum):
    COMPLETED = "completed"
    VOIDED = "voided"


class ReturnKind(enum.StrEnum):
    RETURN = "return"
    VOID = "void"


class ReceiptCounter(db.Model):
    """The last receipt number given out by one shop on one local business day."""

    __tablename__ = "receipt_counters"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    business_day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Sale(db.Model):
    __tablename__ = "sales"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    shop_code: Mapped[str] = mapped_column(String(32))
    receipt_no: Mapped[str] = mapped_column(String(64), unique=True)
    business_day: Mapped[date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(Integer)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    # The card scanned, if any: a sale by household id (the office, the API) has none.
    card_id: Mapped[int | None] = mapped_column(ForeignKey("member_cards.id"))
    total_points: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=SaleStatus.COMPLETED)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    clerk_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Made by the shop's node while its line to the county was down (nodes package): its
    # receipt number is of the node's own series, `seq` the node's sequence, `created_at`
    # the time it was made.
    offline: Mapped[bool] = mapped_column(default=False, server_default=false())

    lines: Mapped[list[SaleLine]] = relationship(
        order_by="SaleLine.position", cascade="all, delete-orphan", lazy="selectin"
    )
    returns: Mapped[list[SaleReturn]] = relationship(
        order_by="SaleReturn.id", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        # Zero only for an offline sale a household could not pay at all (nodes.intake).
        CheckConstraint("total_points >= 0", name="total_not_negative"),
        # Sequential within the shop's day: the pair is what the receipt number spells. A
        # node's offline sales number in the node's own series (its receipt numbers say L).
        Index(
            "uq_sales_shop_id_business_day_seq",
            "shop_id",
            "business_day",
            "seq",
            unique=True,
            postgresql_where=text("NOT offline"),
            sqlite_where=text("NOT offline"),
        ),
        Index("ix_sales_shop_id_business_day", "shop_id", "business_day"),
    )


class SaleLine(db.Model):
    """One product of a sale, with the name and price it had at the time of the sale."""

    __tablename__ = "sale_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    sku: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    qty: Mapped[int] = mapped_column(Integer)
    points_each: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),)


class SaleReturn(db.Model):
    """Goods brought back against a sale (a return), or the whole sale undone (a void)."""

    __tablename__ = "sale_returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id", ondelete="CASCADE"), index=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    kind: Mapped[str] = mapped_column(String(16), default=ReturnKind.RETURN)
    business_day: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    refund_points: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[SaleReturnLine]] = relationship(
        order_by="SaleReturnLine.id", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        CheckConstraint("refund_points > 0", name="refund_positive"),
        Index("ix_sale_returns_shop_id_business_day", "shop_id", "business_day"),
    )


class SaleReturnLine(db.Model):
    __tablename__ = "sale_return_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(
        ForeignKey("sale_returns.id", ondelete="CASCADE"), index=True
    )
    sale_line_id: Mapped[int] = mapped_column(ForeignKey("sale_lines.id"), index=True)
    sku: Mapped[str] = mapped_column(String(32))
    qty: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),)

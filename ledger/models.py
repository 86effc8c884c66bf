"""Ledger tables: villages, households, point rules, accounts and immutable transfers."""

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
    column,
    select,
    table,
    text,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from core.db import UTCDateTime, db, utcnow


class TransferKind(enum.StrEnum):
    AWARD = "award"
    PENALTY = "penalty"
    REDEMPTION = "redemption"
    REFUND = "refund"
    CORRECTION = "correction"


class AccountKind(enum.StrEnum):
    HOUSEHOLD = "household"
    ISSUANCE = "issuance"
    PENALTY = "penalty"
    SHOP = "shop"


class Village(db.Model):
    __tablename__ = "villages"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Points a redemption must leave untouched (some villages keep a reserve).
    redemption_floor: Mapped[int] = mapped_column(Integer, default=0)
    # The village's home shop: its community supermarket, where its households may also buy
    # while that shop is offline (API.md). Named by table: the ledger does not import
    # inventory.
    home_shop_id: Mapped[int | None] = mapped_column(
        ForeignKey("shops.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A new floor or home shop re-sends the village's households to the shop nodes.
    updated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, index=True
    )

    __table_args__ = (CheckConstraint("redemption_floor >= 0", name="floor_not_negative"),)


# Other packages' tables as the ledger reads them, by name only (see Village.home_shop_id).
SHOPS = table("shops", column("id"), column("code"), column("name"))
SHOP_NODES = table("shop_nodes", column("id"), column("shop_id"))

# The home shop's code, loaded with the village (API.md's `shop_code`).
Village.shop_code = column_property(  # type: ignore[attr-defined]
    select(SHOPS.c.code)
    .where(SHOPS.c.id == Village.__table__.c.home_shop_id)
    .correlate_except(SHOPS)
    .scalar_subquery()
)


class Household(db.Model):
    __tablename__ = "households"

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    head_name: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The shop node's feed re-sends a household changed since its cursor (nodes.services.feed).
    updated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, index=True
    )

    village: Mapped[Village] = relationship(lazy="joined")
    members: Mapped[list[HouseholdMember]] = relationship(
        order_by="HouseholdMember.position", cascade="all, delete-orphan", lazy="selectin"
    )
    account: Mapped[Account] = relationship(back_populates="household", lazy="joined")


class HouseholdMember(db.Model):
    __tablename__ = "household_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)


class Account(db.Model):
    """A place points sit. Household accounts cache balance and totals; system ones do not.

    System accounts (issuance, penalty sink, each shop's redemptions) take part in every
    transfer; caching their balance would make every redemption in the county queue on one
    row, so their balance is an indexed sum, read only by reports and `verify`.
    """

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), unique=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_total: Mapped[int] = mapped_column(BigInteger, default=0)
    penalty_total: Mapped[int] = mapped_column(BigInteger, default=0)
    redeemed_total: Mapped[int] = mapped_column(BigInteger, default=0)
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    household: Mapped[Household | None] = relationship(back_populates="account")


class PointRule(db.Model):
    __tablename__ = "point_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(Integer)
    per: Mapped[str] = mapped_column(String(16), default="household")
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The county's category for stars (county.models.RuleCategory), named by table so that
    # the ledger does not import the county package.
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("rule_categories.id", ondelete="SET NULL"), index=True
    )
    # Optional: at most limit_count declarations of the deed per household per
    # limit_period (day, week or month); the declarations package enforces it.
    limit_count: Mapped[int | None] = mapped_column(Integer)
    limit_period: Mapped[str | None] = mapped_column(String(8))

    village: Mapped[Village | None] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("points <> 0", name="points_not_zero"),
        CheckConstraint("per IN ('household', 'person')", name="per_known"),
        # NULL village_id means county-wide; NULLs never clash in a plain unique index.
        Index(
            "uq_point_rules_county_code",
            "code",
            unique=True,
            postgresql_where=text("village_id IS NULL"),
            sqlite_where=text("village_id IS NULL"),
        ),
        Index(
            "uq_point_rules_village_code",
            "village_id",
            "code",
            unique=True,
            postgresql_where=text("village_id IS NOT NULL"),
            sqlite_where=text("village_id IS NOT NULL"),
        ),
    )


class Transfer(db.Model):
    """One immutable movement of points. Never updated, never deleted.

    Every transfer has exactly one household side (`chain_account_id`); the household's
    transfers form a hash chain through `prev_hash`/`hash`, and `entry_seq` and
    `balance_after` are the household's position and balance after it.
    """

    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Integer)
    chain_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    entry_seq: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("point_rules.id"))
    persons: Mapped[int | None] = mapped_column(Integer)
    # The counter's sale; no foreign key, because the ledger must not depend on pos.
    sale_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"), unique=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    rule: Mapped[PointRule | None] = relationship()
    debit_account: Mapped[Account] = relationship(foreign_keys=[debit_account_id])
    credit_account: Mapped[Account] = relationship(foreign_keys=[credit_account_id])

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="two_sides"),
        Index("ix_transfers_chain_account_id_id", "chain_account_id", "id"),
        # A village's rankings for a period: each household's transfers in a time range
        # (county.services; 10M transfers: a village's red list 0.9 s without, 0.05 s with).
        Index("ix_transfers_chain_account_id_created_at", "chain_account_id", "created_at"),
        Index("ix_transfers_debit_account_id_created_at", "debit_account_id", "created_at"),
        Index("ix_transfers_credit_account_id_created_at", "credit_account_id", "created_at"),
    )

"""Declaration tables: a deed declared for a household, its photos, and the decision on it."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.auth import User
from core.db import UTCDateTime, db, utcnow
from ledger.models import Household, PointRule, Village

# A perceptual hash is 64 bits, split into this many bands for the duplicate look-up (see
# declarations.duplicates): the widths add up to 64, and a hash within BANDS - 1 bits of
# another shares at least one band with it exactly.
BAND_WIDTHS = (10, 9, 9, 9, 9, 9, 9)
BANDS = len(BAND_WIDTHS)


class Status(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Declaration(db.Model):
    """One deed declared for one household under one rule, and its final decision.

    Nothing here is deleted. A pending declaration is decided once: approved (the award
    it posted is `transfer_id`) or rejected (with the reason). A wrong approval is undone
    by a ledger correction of that transfer, never by changing this row.
    """

    __tablename__ = "declarations"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("point_rules.id"))
    # As declared: approval posts through the rule of this code in force in the village.
    rule_code: Mapped[str] = mapped_column(String(32))
    persons: Mapped[int | None] = mapped_column(Integer)
    happened_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The earlier declaration one of this one's photos is a copy of, if any.
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("declarations.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The approval's idempotency key as the client sent it.
    decision_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    transfer_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("transfers.id"), unique=True
    )
    reject_reason: Mapped[str | None] = mapped_column(String(500))

    household: Mapped[Household] = relationship(lazy="joined")
    village: Mapped[Village] = relationship(lazy="joined")
    rule: Mapped[PointRule] = relationship(lazy="joined")
    submitted_by: Mapped[User] = relationship(foreign_keys=[submitted_by_id], lazy="joined")
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    photos: Mapped[list[DeclarationPhoto]] = relationship(
        order_by="DeclarationPhoto.position", lazy="selectin", back_populates="declaration"
    )

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
        CheckConstraint("status <> 'approved' OR transfer_id IS NOT NULL", name="approved_posts"),
        CheckConstraint(
            "status <> 'rejected' OR reject_reason IS NOT NULL", name="rejected_has_reason"
        ),
        # The review queue and the village's lists: a village's declarations by status.
        Index("ix_declarations_village_id_status", "village_id", "status"),
        # Per-rule limits count a household's declarations of a rule in a period.
        Index(
            "ix_declarations_household_id_rule_code_happened_on",
            "household_id",
            "rule_code",
            "happened_on",
        ),
    )


class DeclarationPhoto(db.Model):
    """A photo as stored (re-encoded JPEG named by its SHA-256) and what was read from it."""

    __tablename__ = "declaration_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("declarations.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # The SHA-256 of the bytes as uploaded, before re-encoding.
    upload_sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    # The 64-bit perceptual hash as a signed integer (BIGINT has no unsigned kind), and
    # its bands, each indexed: see declarations.duplicates.
    phash: Mapped[int] = mapped_column(BigInteger)
    band0: Mapped[int] = mapped_column(Integer, index=True)
    band1: Mapped[int] = mapped_column(Integer, index=True)
    band2: Mapped[int] = mapped_column(Integer, index=True)
    band3: Mapped[int] = mapped_column(Integer, index=True)
    band4: Mapped[int] = mapped_column(Integer, index=True)
    band5: Mapped[int] = mapped_column(Integer, index=True)
    band6: Mapped[int] = mapped_column(Integer, index=True)
    # From the photo's EXIF before it was stripped, when the camera wrote them.
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("declaration_photos.id"))
    duplicate_distance: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    declaration: Mapped[Declaration] = relationship(back_populates="photos")
    duplicate_of: Mapped[DeclarationPhoto | None] = relationship(
        remote_side=[id], lazy="joined", join_depth=1
    )

    __table_args__ = (
        UniqueConstraint("declaration_id", "position"),
        CheckConstraint("position BETWEEN 1 AND 3", name="position_range"),
    )

"""Member card tables: a household's cards and the append-only history of every change."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.auth import User
from core.db import UTCDateTime, db, utcnow
from ledger.models import Household


class CardStatus(enum.StrEnum):
    ACTIVE = "active"
    # Reported lost or stolen.
    REVOKED = "revoked"
    # Superseded by a newer card of the same household.
    REPLACED = "replaced"


class CardEventKind(enum.StrEnum):
    ISSUED = "issued"
    REVOKED = "revoked"
    REPLACED = "replaced"
    REPRINTED = "reprinted"


class MemberCard(db.Model):
    """One card of a household: its nth, with serial ``HHHHHH-NN`` (see signing.card_serial).

    The QR payload is not stored: it is derived from household id and number with the
    current signing key whenever it is printed, so a key change needs no data change.
    """

    __tablename__ = "member_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    serial: Mapped[str] = mapped_column(String(24), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=CardStatus.ACTIVE)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When it stopped working, and why (revoked) or by which card (replaced).
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("member_cards.id"))

    household: Mapped[Household] = relationship(lazy="joined", innerjoin=True)
    replaced_by: Mapped[MemberCard | None] = relationship(remote_side=[id])
    events: Mapped[list[MemberCardEvent]] = relationship(
        back_populates="card", order_by="MemberCardEvent.id", lazy="selectin"
    )

    __table_args__ = (
        UniqueConstraint("household_id", "number"),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint("status IN ('active', 'revoked', 'replaced')", name="status_known"),
        # At most one working card per household, whatever races the application loses.
        Index(
            "uq_member_cards_one_active",
            "household_id",
            unique=True,
            postgresql_where=sql_text("status = 'active'"),
            sqlite_where=sql_text("status = 'active'"),
        ),
    )


class MemberCardEvent(db.Model):
    """Who changed a card, how and when. Appended, never updated."""

    __tablename__ = "member_card_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("member_cards.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    card: Mapped[MemberCard] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(
            "kind IN ('issued', 'revoked', 'replaced', 'reprinted')", name="kind_known"
        ),
    )

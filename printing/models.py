"""Printer tables: each shop's receipt printer, and print jobs that outlive printer faults."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, db, utcnow


class JobKind(enum.StrEnum):
    RECEIPT = "receipt"
    COPY = "copy"
    REPORT = "report"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    PRINTED = "printed"
    FAILED = "failed"


class Printer(db.Model):
    """A shop's receipt printer; a shop without a row may have one in config.toml."""

    __tablename__ = "printers"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), unique=True)
    # network | usb | serial | file | cups | lp | win32 (printing.devices.KINDS)
    kind: Mapped[str] = mapped_column(String(16))
    # The kind's connection settings: host/port, vendor_id/product_id/in_ep/out_ep,
    # devfile/baudrate or printer_name; JSON so a new kind needs no migration.
    connection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    paper_mm: Mapped[int] = mapped_column(Integer, default=58)
    # text: GB18030 in the printer's Chinese mode; image: rendered for printers without a font.
    mode: Mapped[str] = mapped_column(String(8), default="text")
    profile: Mapped[str | None] = mapped_column(String(64))
    # The central server cannot reach it: the shop's print agent fetches its jobs.
    via_agent: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("paper_mm IN (58, 80)", name="paper_mm"),
        CheckConstraint("mode IN ('text', 'image')", name="mode"),
    )


class PrintJob(db.Model):
    """One thing to print, stored with the sale: a printer fault leaves it failed, retriable."""

    __tablename__ = "print_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    # The shop's printer row when there was one; config.toml printers have none.
    printer_id: Mapped[int | None] = mapped_column(ForeignKey("printers.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default=JobKind.RECEIPT)
    sale_id: Mapped[int | None] = mapped_column(
        ForeignKey("sales.id", ondelete="CASCADE"), index=True
    )
    report_day: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Who holds the job while it is sent: a lease id, until when, and the agent's user.
    lease_id: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Reprints and report prints: the same key answers the first job again.
    idempotency_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'sending', 'printed', 'failed')", name="status_known"
        ),
        # The workers' and the agents' question: this shop's next queued job, oldest first.
        Index("ix_print_jobs_shop_id_status_id", "shop_id", "status", "id"),
    )


class PrintAgentSeen(db.Model):
    """When a shop's print agent last asked for work: the counter shows whether it is there."""

    __tablename__ = "print_agent_seen"

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The agent's own printer, as the agent last found it (DLE EOT at the shop): the central
    # server cannot ask a printer behind the shop's firewall.
    printer_state: Mapped[str | None] = mapped_column(String(20))

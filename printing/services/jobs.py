"""Print jobs: a sale's receipt queued with the sale, copies, the day's report, retries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import Conflict, NotFound
from core.idempotency import replay_or_conflict, request_fingerprint
from core.ids import is_id
from inventory import services as inventory
from inventory.models import Shop
from pos import services as pos
from pos.models import Sale
from printing.models import JobKind, JobStatus, PrintJob
from printing.services.settings import (
    PrinterCache,
    PrinterSettings,
    job_printer,
    printer_settings,
)
from printing.wakeup import note_pending


def queue_receipt(
    session: Session,
    sale: Sale,
    *,
    defaults: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    printers: PrinterCache | None = None,
) -> PrintJob | None:
    """The sale's receipt as a job in the sale's own transaction; nothing if no printer.

    Called on every sale: with the shop's printer in `printers` (the app's cache) this is
    one INSERT, or no statement at all for a shop without a printer.
    """
    if printers is not None:
        printer = printers.job_printer(session, sale.shop_id, sale.shop_code, defaults)
    else:
        printer = job_printer(session, sale.shop_id, sale.shop_code, defaults)
    if printer is None:
        return None
    job = PrintJob(
        shop_id=sale.shop_id,
        printer_id=printer or None,
        kind=JobKind.RECEIPT,
        sale_id=sale.id,
        status=JobStatus.QUEUED,
        attempts=0,
        created_at=now or sale.created_at,
        requested_by_id=sale.clerk_id,
    )
    session.add(job)
    note_pending(session, sale.shop_id)
    return job


def _require_printer(
    session: Session, shop: Shop, defaults: Mapping[str, Any] | None
) -> PrinterSettings:
    settings = printer_settings(session, shop, defaults=defaults)
    if settings is None or not settings.enabled:
        raise Conflict(_l("shop %(code)s has no printer set up", code=shop.code))
    return settings


def _replay(session: Session, key: str, fingerprint: str) -> PrintJob | None:
    stored = session.scalar(select(PrintJob).where(PrintJob.idempotency_key == key))
    recorded = stored.request_hash if stored is not None else None
    return replay_or_conflict(stored, recorded=recorded, fingerprint=fingerprint, key=key)


def reprint_sale(
    session: Session,
    *,
    actor: User,
    sale_id: int,
    idempotency_key: str,
    defaults: Mapping[str, Any] | None,
    now: datetime,
) -> PrintJob:
    """A copy of the sale's receipt (marked COPY) as a new job."""
    sale = pos.get_sale(session, actor=actor, sale_id=sale_id)
    fingerprint = request_fingerprint(print="copy", sale_id=sale_id)
    replay = _replay(session, idempotency_key, fingerprint)
    if replay is not None:
        return replay
    shop = session.get(Shop, sale.shop_id)
    assert shop is not None
    settings = _require_printer(session, shop, defaults)
    job = PrintJob(
        shop_id=shop.id,
        printer_id=settings.printer_id,
        kind=JobKind.COPY,
        sale_id=sale.id,
        status=JobStatus.QUEUED,
        attempts=0,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        requested_by_id=actor.id,
        created_at=now,
    )
    session.add(job)
    session.flush()
    note_pending(session, shop.id)
    return job


def print_daily_report(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    day: date,
    idempotency_key: str,
    defaults: Mapping[str, Any] | None,
    now: datetime,
) -> PrintJob:
    """The day's report on the shop's receipt printer (managers)."""
    actor.require_shop_manager(shop_code)
    shop = inventory.get_shop(session, shop_code)
    fingerprint = request_fingerprint(print="report", shop=shop_code, day=day.isoformat())
    replay = _replay(session, idempotency_key, fingerprint)
    if replay is not None:
        return replay
    settings = _require_printer(session, shop, defaults)
    job = PrintJob(
        shop_id=shop.id,
        printer_id=settings.printer_id,
        kind=JobKind.REPORT,
        report_day=day,
        status=JobStatus.QUEUED,
        attempts=0,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        requested_by_id=actor.id,
        created_at=now,
    )
    session.add(job)
    session.flush()
    note_pending(session, shop.id)
    return job


def visible_job(session: Session, actor: User, job_id: int) -> tuple[PrintJob, Shop]:
    """The job and its shop, if the actor works there or is its agent; else as absent (404)."""
    job = session.get(PrintJob, job_id) if is_id(job_id) else None
    shop = session.get(Shop, job.shop_id) if job is not None else None
    if (
        job is None
        or shop is None
        or not (actor.may_sell_at(shop.code) or actor.may_fetch_print_jobs(shop.code))
    ):
        raise NotFound(_l("no print job %(job_id)s", job_id=job_id))
    return job, shop


def retry_job(session: Session, *, actor: User, job_id: int, now: datetime) -> PrintJob:
    """A failed job goes back to the queue; a queued or sending one is left as it is."""
    job, shop = visible_job(session, actor, job_id)
    actor.require_shop_staff(shop.code)
    if job.status == JobStatus.PRINTED:
        raise Conflict(_l("this job was printed; print a copy instead"))
    if job.status == JobStatus.FAILED:
        session.execute(
            update(PrintJob)
            .where(PrintJob.id == job.id, PrintJob.status == JobStatus.FAILED)
            .values(status=JobStatus.QUEUED, lease_id=None, leased_until=None)
        )
        session.refresh(job)
        note_pending(session, shop.id)
    return job


def jobs_for_sale(session: Session, *, actor: User, sale_id: int) -> Sequence[PrintJob]:
    sale = pos.get_sale(session, actor=actor, sale_id=sale_id)
    return session.scalars(
        select(PrintJob).where(PrintJob.sale_id == sale.id).order_by(PrintJob.id.desc())
    ).all()


def jobs_for_shop(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    report_day: date | None = None,
    status: str | None = None,
    limit: int = 20,
) -> Sequence[PrintJob]:
    actor.require_shop_staff(shop_code)
    shop = inventory.get_shop(session, shop_code)
    stmt = select(PrintJob).where(PrintJob.shop_id == shop.id)
    if report_day is not None:
        stmt = stmt.where(PrintJob.kind == JobKind.REPORT, PrintJob.report_day == report_day)
    if status is not None:
        stmt = stmt.where(PrintJob.status == status)
    return session.scalars(stmt.order_by(PrintJob.id.desc()).limit(limit)).all()

"""Who sends a job: the server's own worker (claims) or the shop's print agent (leases)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, aliased

from accounts.auth import User
from core.errors import Conflict, Forbidden
from inventory import services as inventory
from printing.devices import INTERRUPTED, fault_text
from printing.models import JobStatus, PrintAgentSeen, PrintJob
from printing.services.jobs import visible_job
from printing.services.settings import PrinterSettings, printer_settings, printer_settings_by_id

MAX_ERROR = 500
AGENT_SEEN_EVERY = 20


def require_print_agent(actor: User, shop_code: str) -> None:
    """Only the shop's own print agent (or the county office) takes and settles its jobs."""
    if not actor.may_fetch_print_jobs(shop_code):
        raise Forbidden(
            _l("only shop %(shop_code)s's print agent may do this", shop_code=shop_code)
        )


# --- sending: the server's own worker ------------------------------------------------------


def claim_job(session: Session, job_id: int, *, now: datetime, lease_seconds: float) -> str | None:
    """Take a queued job for sending; None if another worker took it (or it is not queued)."""
    lease = uuid.uuid4().hex
    other = aliased(PrintJob)
    # One job at a time per printer, even with several server processes sending.
    busy = (
        select(other.id)
        .where(
            other.shop_id == PrintJob.shop_id,
            other.status == JobStatus.SENDING,
            other.leased_until > now,
        )
        .exists()
    )
    taken = session.execute(
        update(PrintJob)
        .where(PrintJob.id == job_id, PrintJob.status == JobStatus.QUEUED, ~busy)
        .values(
            status=JobStatus.SENDING,
            lease_id=lease,
            leased_until=now + timedelta(seconds=lease_seconds),
            lease_holder_id=None,
            attempts=PrintJob.attempts + 1,
        )
    ).rowcount
    return lease if taken else None


def finish_job(
    session: Session, job_id: int, *, lease: str, now: datetime, error: str | None = None
) -> bool:
    """Printed (no error) or failed (retriable), if the lease is still ours."""
    values: dict[str, Any] = {"lease_id": None, "leased_until": None}
    if error is None:
        values.update(status=JobStatus.PRINTED, printed_at=now, last_error=None)
    else:
        values.update(status=JobStatus.FAILED, last_error=error[:MAX_ERROR])
    done = session.execute(
        update(PrintJob)
        .where(
            PrintJob.id == job_id,
            PrintJob.status == JobStatus.SENDING,
            PrintJob.lease_id == lease,
        )
        .values(**values)
    ).rowcount
    return bool(done)


def queued_direct_jobs(
    session: Session, *, defaults: Mapping[str, Any] | None, limit: int = 200
) -> list[tuple[int, int]]:
    """(shop id, job id) of queued jobs whose printer the server sends to itself, oldest first."""
    rows = session.execute(
        select(PrintJob.shop_id, PrintJob.id)
        .where(PrintJob.status == JobStatus.QUEUED)
        .order_by(PrintJob.id)
        .limit(limit)
    ).all()
    direct: dict[int, bool] = {}
    found = []
    for shop_id, job_id in rows:
        if shop_id not in direct:
            settings = printer_settings_by_id(session, shop_id, defaults=defaults)
            direct[shop_id] = settings is not None and settings.direct
        if direct[shop_id]:
            found.append((shop_id, job_id))
    return found


def fail_interrupted(session: Session, *, now: datetime) -> int:
    """The server's sends cut off by a crash: failed, for the clerk to retry.

    Never sent again by themselves, since the printer may have printed them already.
    Agents' leases (with a holder) are the agents' business: they return to the queue.
    """
    return session.execute(
        update(PrintJob)
        .where(
            PrintJob.status == JobStatus.SENDING,
            PrintJob.lease_holder_id.is_(None),
            PrintJob.leased_until < now,
        )
        .values(
            status=JobStatus.FAILED,
            lease_id=None,
            leased_until=None,
            last_error=fault_text(
                INTERRUPTED, "interrupted while sending; it may or may not have printed"
            ),
        )
    ).rowcount


# --- the print agent -------------------------------------------------------------------------


def lease_next(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    now: datetime,
    lease_seconds: float,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[PrintJob, PrinterSettings | None] | None:
    """The shop's oldest job for its agent: queued, leased by this agent before a restart, or
    leased by anyone whose lease ran out. A restarted agent gets its unfinished job back
    first; its journal says whether that one was already printed."""
    require_print_agent(actor, shop_code)
    shop = inventory.get_shop(session, shop_code)
    for _ in range(3):
        candidate = session.scalar(
            select(PrintJob.id)
            .where(
                PrintJob.shop_id == shop.id,
                or_(
                    PrintJob.status == JobStatus.QUEUED,
                    (PrintJob.status == JobStatus.SENDING)
                    & ((PrintJob.lease_holder_id == actor.id) | (PrintJob.leased_until < now)),
                ),
            )
            .order_by(PrintJob.id)
            .limit(1)
        )
        if candidate is None:
            return None
        settings = printer_settings(session, shop, defaults=defaults)
        lease = uuid.uuid4().hex
        taken = session.execute(
            update(PrintJob)
            .where(
                PrintJob.id == candidate,
                or_(
                    PrintJob.status == JobStatus.QUEUED,
                    (PrintJob.status == JobStatus.SENDING)
                    & ((PrintJob.lease_holder_id == actor.id) | (PrintJob.leased_until < now)),
                ),
            )
            .values(
                status=JobStatus.SENDING,
                lease_id=lease,
                leased_until=now + timedelta(seconds=lease_seconds),
                lease_holder_id=actor.id,
                attempts=PrintJob.attempts + 1,
            )
        ).rowcount
        if taken:
            job = session.get(PrintJob, candidate)
            assert job is not None
            session.refresh(job)
            return job, settings
    return None


def agent_finish(
    session: Session,
    *,
    actor: User,
    job_id: int,
    lease: str,
    now: datetime,
    error: str | None = None,
) -> PrintJob:
    """The agent's word on a job: printed (ack) or failed. Repeating it changes nothing.

    An ack counts even when the lease ran out meanwhile: the agent printed the job, and
    printing it again is what the journal exists to prevent.
    """
    job, shop = visible_job(session, actor, job_id)
    require_print_agent(actor, shop.code)
    if error is None:
        if job.status == JobStatus.PRINTED:
            return job
        if (
            job.status == JobStatus.SENDING
            and job.lease_id != lease
            and (job.leased_until is not None and job.leased_until > now)
        ):
            raise Conflict(_l("another lease holds print job %(job_id)s", job_id=job_id))
        job.status = JobStatus.PRINTED
        job.printed_at = now
        job.last_error = None
    else:
        if job.status != JobStatus.SENDING or job.lease_id != lease:
            # Already settled, or re-leased after this lease ran out: the report is stale.
            return job
        job.status = JobStatus.FAILED
        job.last_error = error[:MAX_ERROR]
    job.lease_id = None
    job.leased_until = None
    session.flush()
    return job


def agent_seen(
    session: Session,
    *,
    shop_id: int,
    user_id: int | None,
    now: datetime,
    printer_state: str | None = None,
) -> None:
    """Note that the shop's agent asked for work, and how it found its printer.

    A write every AGENT_SEEN_EVERY seconds is enough to tell the agent is there; a change
    of the printer's state is written at once, so the counter learns of it within a poll.
    """
    row = session.get(PrintAgentSeen, shop_id)
    if row is None:
        session.add(
            PrintAgentSeen(
                shop_id=shop_id, user_id=user_id, seen_at=now, printer_state=printer_state
            )
        )
    elif (
        printer_state != row.printer_state
        or (now - row.seen_at).total_seconds() >= AGENT_SEEN_EVERY
    ):
        row.seen_at, row.user_id, row.printer_state = now, user_id, printer_state
    session.flush()


def agent_last_seen(session: Session, shop_id: int) -> tuple[datetime | None, str | None]:
    """When the shop's agent last asked for work, and the state it reported of its printer."""
    row = session.execute(
        select(PrintAgentSeen.seen_at, PrintAgentSeen.printer_state).where(
            PrintAgentSeen.shop_id == shop_id
        )
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)

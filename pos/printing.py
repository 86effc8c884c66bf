"""Printing operations: printers per shop, print jobs, leases; take the session, never commit."""

from __future__ import annotations

import re
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, aliased

from core.errors import Conflict, Forbidden, IdempotencyConflict, NotFound, ValidationFailed
from core.idempotency import request_fingerprint
from core.ids import is_id
from inventory import services as inventory
from inventory.models import Shop
from pos.models import Sale
from pos.printer_devices import (
    AGENT_OFFLINE,
    FAULT_CODES,
    INTERRUPTED,
    KINDS,
    NO_FONT,
    OFFLINE,
    OTHER,
    PAPER_OUT,
    SETUP,
    TIMEOUT,
    UNREACHABLE,
    fault_text,
)
from pos.printing_models import JobKind, JobStatus, PrintAgentSeen, Printer, PrintJob

if TYPE_CHECKING:
    from accounts.auth import User

# A host name or an IPv4/IPv6 address, nothing a socket would choke on.
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]_]{1,200}")
PAPER_SIZES = (58, 80)
MODES = ("text", "image")
MAX_ERROR = 500
FAILED_SHOWN_FOR = timedelta(hours=12)
AGENT_SEEN_EVERY = 20
# A shop's printer set-up is read by every sale; a few seconds' staleness costs nothing.
CACHE_SECONDS = 5.0
# Keys of a config.toml [printers.<SHOP>] table that are not connection settings.
_COMMON_KEYS = {"kind", "paper_mm", "mode", "profile", "via_agent", "enabled"}
_CONNECTION_KEYS = {
    "network": ("host", "port", "timeout", "confirm"),
    "usb": ("vendor_id", "product_id", "in_ep", "out_ep", "timeout"),
    "serial": ("devfile", "baudrate", "timeout"),
    "file": ("devfile",),
    "cups": ("printer_name",),
    "lp": ("printer_name",),
    "win32": ("printer_name",),
}
_REQUIRED = {
    "network": ("host",),
    "usb": ("vendor_id", "product_id"),
    "serial": ("devfile",),
    "file": ("devfile",),
    "cups": ("printer_name",),
    "lp": ("printer_name",),
    "win32": ("printer_name",),
}


@dataclass(frozen=True)
class PrinterSettings:
    """A shop's printer as configured, copied out of the session (workers use it after commit)."""

    shop_id: int
    shop_code: str
    kind: str
    connection: dict[str, Any]
    paper_mm: int = 58
    mode: str = "text"
    profile: str | None = None
    via_agent: bool = False
    enabled: bool = True
    printer_id: int | None = None
    source: str = "database"  # or "config"

    @property
    def direct(self) -> bool:
        """The server itself sends this printer's jobs."""
        return self.enabled and not self.via_agent


@dataclass
class PrinterOverview:
    shop_code: str
    shop_name: str
    printer: PrinterSettings | None
    queued: int = 0
    last_failed: PrintJob | None = None
    last_job: PrintJob | None = None
    agent_seen_at: datetime | None = None
    agent_printer_state: str | None = None
    status: dict[str, Any] = field(default_factory=dict)


class _Internal:
    """The print worker reading a sale or a report on nobody's behalf but the printer's."""

    id = None
    role = "admin"
    is_admin = True
    shop_code = None

    def may_sell_at(self, _shop_code: str) -> bool:
        return True

    def may_manage_shop(self, _shop_code: str) -> bool:
        return True


INTERNAL: Any = _Internal()


# --- printer settings ------------------------------------------------------------------


def validate_printer(
    *,
    kind: str,
    connection: Mapping[str, Any],
    paper_mm: Any,
    mode: str,
    profile: str | None,
) -> dict[str, Any]:
    """The connection settings a kind needs, checked; every bad field named at once."""
    errors: dict[str, list[Any]] = {}
    if kind not in KINDS:
        errors["kind"] = [_l("one of %(kinds)s", kinds=", ".join(KINDS))]
        raise ValidationFailed(errors=errors)
    if paper_mm not in PAPER_SIZES:
        errors["paper_mm"] = [_l("58 or 80")]
    if mode not in MODES:
        errors["mode"] = [_l("text or image")]
    if profile is not None and (len(profile) > 64 or not profile.strip()):
        errors["profile"] = [_l("a python-escpos profile name, at most 64 characters")]
    elif profile is not None and paper_mm in PAPER_SIZES:
        from pos.escpos_render import paper, printer_profile

        try:
            printer_profile(profile, paper(paper_mm)[1])
        except ValueError as exc:
            errors["profile"] = [str(exc)]
    clean: dict[str, Any] = {}
    for key in _CONNECTION_KEYS[kind]:
        value = connection.get(key)
        if value in (None, ""):
            if key in _REQUIRED[kind]:
                errors[key] = [_l("required")]
            continue
        try:
            clean[key] = _connection_value(key, value)
        except (TypeError, ValueError):
            errors[key] = [_l("not valid")]
    if errors:
        raise ValidationFailed(errors=errors)
    return clean


def _connection_value(key: str, value: Any) -> Any:
    if key in ("port", "baudrate"):
        number = int(value)
        if not 1 <= number <= (65535 if key == "port" else 4_000_000):
            raise ValueError(key)
        return number
    if key in ("vendor_id", "product_id", "in_ep", "out_ep"):
        number = value if isinstance(value, int) else int(str(value).strip(), 0)
        if not 0 <= number <= 0xFFFF or isinstance(value, bool):
            raise ValueError(key)
        return number
    if key == "timeout":
        seconds = float(value)
        if not 0.05 <= seconds <= 60:
            raise ValueError(key)
        return seconds
    if key == "confirm":
        if not isinstance(value, bool):
            raise ValueError(key)
        return value
    text = str(value).strip()
    if not text or len(text) > 200 or "\x00" in text:
        raise ValueError(key)
    if key == "host" and not _HOST.fullmatch(text):
        raise ValueError(key)
    return text


def _from_row(row: Printer, shop: Shop) -> PrinterSettings:
    return PrinterSettings(
        shop_id=shop.id,
        shop_code=shop.code,
        kind=row.kind,
        connection=dict(row.connection or {}),
        paper_mm=row.paper_mm,
        mode=row.mode,
        profile=row.profile,
        via_agent=row.via_agent,
        enabled=row.enabled,
        printer_id=row.id,
        source="database",
    )


def _from_config(entry: Mapping[str, Any], shop_id: int, shop_code: str) -> PrinterSettings:
    kind = str(entry.get("kind", "")).lower()
    paper_mm = entry.get("paper_mm", 58)
    mode = str(entry.get("mode", "text"))
    profile = entry.get("profile")
    try:
        connection = validate_printer(
            kind=kind, connection=entry, paper_mm=paper_mm, mode=mode, profile=profile
        )
    except ValidationFailed as exc:
        raise ValidationFailed(
            _l("config.toml [printers.%(shop)s] is not valid", shop=shop_code),
            errors=exc.extra.get("errors"),
        ) from exc
    return PrinterSettings(
        shop_id=shop_id,
        shop_code=shop_code,
        kind=kind,
        connection=connection,
        paper_mm=int(paper_mm),
        mode=mode,
        profile=profile,
        via_agent=bool(entry.get("via_agent", False)),
        enabled=bool(entry.get("enabled", True)),
        source="config",
    )


def _config_entry(defaults: Mapping[str, Any] | None, shop_code: str) -> Mapping[str, Any] | None:
    if not defaults:
        return None
    entry = defaults.get(shop_code)
    return entry if isinstance(entry, Mapping) else None


def printer_settings(
    session: Session, shop: Shop, *, defaults: Mapping[str, Any] | None
) -> PrinterSettings | None:
    """The shop's printer: its database row, else its config.toml table, else none."""
    row = session.scalar(select(Printer).where(Printer.shop_id == shop.id))
    if row is not None:
        return _from_row(row, shop)
    entry = _config_entry(defaults, shop.code)
    return _from_config(entry, shop.id, shop.code) if entry is not None else None


def printer_settings_by_id(
    session: Session, shop_id: int, *, defaults: Mapping[str, Any] | None
) -> PrinterSettings | None:
    shop = session.get(Shop, shop_id)
    return None if shop is None else printer_settings(session, shop, defaults=defaults)


# The shop's printer id (0: a config.toml printer, None: no printer) per database engine,
# so one process serving several databases (the tests) never mixes them up.
_cache: weakref.WeakKeyDictionary[Any, dict[int, tuple[float, int | None]]] = (
    weakref.WeakKeyDictionary()
)


def _cached_printer(
    session: Session, shop_id: int, shop_code: str, defaults: Mapping[str, Any] | None
) -> int | None:
    engine = session.get_bind()
    per_engine = _cache.setdefault(engine, {})
    hit = per_engine.get(shop_id)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    row = session.execute(
        select(Printer.id, Printer.enabled).where(Printer.shop_id == shop_id)
    ).first()
    if row is not None:
        printer: int | None = row.id if row.enabled else None
    else:
        entry = _config_entry(defaults, shop_code)
        printer = 0 if entry is not None and entry.get("enabled", True) else None
    per_engine[shop_id] = (now + CACHE_SECONDS, printer)
    return printer


def forget_cached_printer(session: Session, shop_id: int) -> None:
    _cache.get(session.get_bind(), {}).pop(shop_id, None)


def save_printer(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    now: datetime,
    kind: str,
    connection: Mapping[str, Any],
    paper_mm: int = 58,
    mode: str = "text",
    profile: str | None = None,
    via_agent: bool = False,
    enabled: bool = True,
) -> PrinterSettings:
    """Set up the shop's printer (admin); the row replaces any config.toml default."""
    if not actor.is_admin:
        raise Forbidden(_l("only the county office may set up printers"))
    shop = inventory.get_shop(session, shop_code)
    profile = (profile or "").strip() or None
    clean = validate_printer(
        kind=kind, connection=connection, paper_mm=paper_mm, mode=mode, profile=profile
    )
    row = session.scalar(select(Printer).where(Printer.shop_id == shop.id))
    if row is None:
        row = Printer(shop_id=shop.id)
        session.add(row)
    row.kind = kind
    row.connection = clean
    row.paper_mm = paper_mm
    row.mode = mode
    row.profile = profile
    row.via_agent = via_agent
    row.enabled = enabled
    row.updated_at = now
    session.flush()
    forget_cached_printer(session, shop.id)
    return _from_row(row, shop)


def remove_printer(session: Session, *, actor: User, shop_code: str) -> None:
    """Forget the shop's printer row: its config.toml default (if any) applies again."""
    if not actor.is_admin:
        raise Forbidden(_l("only the county office may set up printers"))
    shop = inventory.get_shop(session, shop_code)
    row = session.scalar(select(Printer).where(Printer.shop_id == shop.id))
    if row is not None:
        session.delete(row)
        session.flush()
    forget_cached_printer(session, shop.id)


# --- queueing ----------------------------------------------------------------------------

# Shops with a job queued in the session's transaction: the worker wakes for them on commit.
PENDING_KEY = "pos_printing_pending_shops"


def _note_pending(session: Session, shop_id: int) -> None:
    session.info.setdefault(PENDING_KEY, set()).add(shop_id)


def queue_receipt(
    session: Session,
    sale: Sale,
    *,
    defaults: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> PrintJob | None:
    """The sale's receipt as a job in the sale's own transaction; nothing if no printer.

    Called on every sale: with the shop's printer cached this is one INSERT, or no
    statement at all for a shop without a printer.
    """
    printer = _cached_printer(session, sale.shop_id, sale.shop_code, defaults)
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
    _note_pending(session, sale.shop_id)
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
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise IdempotencyConflict(
            _l("idempotency key %(key)s was used for another request", key=key)
        )
    return stored


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
    sale = _visible_sale(session, actor, sale_id)
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
    _note_pending(session, shop.id)
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
    if not actor.may_manage_shop(shop_code):
        raise Forbidden(_l("only a manager of shop %(shop_code)s may do this", shop_code=shop_code))
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
    _note_pending(session, shop.id)
    return job


def _visible_sale(session: Session, actor: User, sale_id: int) -> Sale:
    sale = session.get(Sale, sale_id) if is_id(sale_id) else None
    if sale is None or not actor.may_sell_at(sale.shop_code):
        raise NotFound(_l("no sale %(sale_id)s", sale_id=sale_id))
    return sale


def _visible_job(session: Session, actor: User, job_id: int) -> tuple[PrintJob, Shop]:
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
    job, shop = _visible_job(session, actor, job_id)
    if not actor.may_sell_at(shop.code):
        raise Forbidden(_l("you may not sell at shop %(shop_code)s", shop_code=shop.code))
    if job.status == JobStatus.PRINTED:
        raise Conflict(_l("this job was printed; print a copy instead"))
    if job.status == JobStatus.FAILED:
        session.execute(
            update(PrintJob)
            .where(PrintJob.id == job.id, PrintJob.status == JobStatus.FAILED)
            .values(status=JobStatus.QUEUED, lease_id=None, leased_until=None)
        )
        session.refresh(job)
        _note_pending(session, shop.id)
    return job


def jobs_for_sale(session: Session, *, actor: User, sale_id: int) -> Sequence[PrintJob]:
    sale = _visible_sale(session, actor, sale_id)
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
    if not actor.may_sell_at(shop_code):
        raise Forbidden(_l("you may not sell at shop %(shop_code)s", shop_code=shop_code))
    shop = inventory.get_shop(session, shop_code)
    stmt = select(PrintJob).where(PrintJob.shop_id == shop.id)
    if report_day is not None:
        stmt = stmt.where(PrintJob.kind == JobKind.REPORT, PrintJob.report_day == report_day)
    if status is not None:
        stmt = stmt.where(PrintJob.status == status)
    return session.scalars(stmt.order_by(PrintJob.id.desc()).limit(limit)).all()


def printer_overview(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    defaults: Mapping[str, Any] | None,
    now: datetime,
) -> PrinterOverview:
    """The counter's printer line: the set-up, the queue, the latest failure (no live status)."""
    if not actor.may_sell_at(shop_code):
        raise Forbidden(_l("you may not sell at shop %(shop_code)s", shop_code=shop_code))
    shop = inventory.get_shop(session, shop_code)
    settings = printer_settings(session, shop, defaults=defaults)
    queued = session.scalar(
        select(func.count())
        .select_from(PrintJob)
        .where(
            PrintJob.shop_id == shop.id,
            PrintJob.status.in_([JobStatus.QUEUED, JobStatus.SENDING]),
        )
    )
    last_job = session.scalar(
        select(PrintJob).where(PrintJob.shop_id == shop.id).order_by(PrintJob.id.desc()).limit(1)
    )
    # The counter's concern is today's queue; older failures stay on their sales' pages.
    last_failed = session.scalar(
        select(PrintJob)
        .where(
            PrintJob.shop_id == shop.id,
            PrintJob.status == JobStatus.FAILED,
            PrintJob.created_at >= now - FAILED_SHOWN_FOR,
        )
        .order_by(PrintJob.id.desc())
        .limit(1)
    )
    seen_at, agent_printer = (
        agent_last_seen(session, shop.id)
        if settings is not None and settings.via_agent
        else (None, None)
    )
    return PrinterOverview(
        shop_code=shop.code,
        shop_name=shop.name,
        printer=settings,
        queued=int(queued or 0),
        last_failed=last_failed,
        last_job=last_job,
        agent_seen_at=seen_at,
        agent_printer_state=agent_printer,
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
    if not actor.may_fetch_print_jobs(shop_code):
        raise Forbidden(
            _l("only shop %(shop_code)s's print agent may do this", shop_code=shop_code)
        )
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
    job, shop = _visible_job(session, actor, job_id)
    if not actor.may_fetch_print_jobs(shop.code):
        raise Forbidden(
            _l("only shop %(shop_code)s's print agent may do this", shop_code=shop.code)
        )
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


# --- rendering -------------------------------------------------------------------------------


def render_job(
    session: Session,
    job: PrintJob,
    settings: PrinterSettings,
    *,
    tz: ZoneInfo,
    font_path: str | None = None,
) -> bytes:
    """The job's exact ESC/POS bytes for this printer (needs an app context for Babel).

    `font_path` is the CJK font image mode draws with; text mode needs none.
    """
    from pos import receipts, services

    if job.kind == JobKind.REPORT:
        assert job.report_day is not None
        report = services.daily_report(
            session, actor=INTERNAL, shop_code=settings.shop_code, day=job.report_day, tz=tz
        )
        lines = receipts.layout_daily_report(
            report, shop_name=report.shop_name, columns=receipts.PAPER[settings.paper_mm][0]
        )
        return receipts.render_escpos(
            lines,
            paper_mm=settings.paper_mm,
            mode=settings.mode,
            profile=settings.profile,
            font_path=font_path,
        )
    assert job.sale_id is not None
    return services.sale_receipt_escpos(
        session,
        actor=None,
        sale_id=job.sale_id,
        tz=tz,
        copy=job.kind == JobKind.COPY,
        paper_mm=settings.paper_mm,
        mode=settings.mode,
        profile=settings.profile,
        font_path=font_path,
    )


# --- why a job did not print, in plain words ----------------------------------------------

# What a clerk is told for each reason: what happened and what to do, never OS text.
REASONS: dict[str, Any] = {
    UNREACHABLE: _l(
        "The printer cannot be reached: check that it is switched on and its cable is "
        "plugged in, then press Retry."
    ),
    TIMEOUT: _l(
        "The printer did not answer: it may be busy or stuck. Check it; if no receipt "
        "came out, press Retry."
    ),
    PAPER_OUT: _l("The printer is out of paper: put in a new roll, then press Retry."),
    OFFLINE: _l(
        "The printer is off line: close its cover and take out any jammed paper, then press Retry."
    ),
    INTERRUPTED: _l(
        "Printing stopped partway. Check whether the receipt came out; if it did not, press Retry."
    ),
    NO_FONT: _l(
        "The server is missing the Chinese font receipts need: please tell the county "
        "office, and press Retry once it is fixed."
    ),
    SETUP: _l(
        "The printer is not set up correctly: please ask the county office to check it "
        "on the Printers page, then press Retry."
    ),
    AGENT_OFFLINE: _l(
        "The shop's print agent is not connected: check that the counter computer is on "
        "and the print agent is running."
    ),
    OTHER: _l(
        "The printer had a problem: press Retry; if it happens again, tell the county office."
    ),
}
NO_PRINTER = _l(
    "No receipt printer is set up for this shop: the county office sets one up on the "
    "Printers page."
)
PRINTER_DISABLED = _l(
    "Receipt printing is switched off for this shop: the county office can switch it on "
    "again on the Printers page."
)

# Words of our own error texts (and the OS's) for rows stored before the codes, and for
# print agents of an older version; the first match wins, so specific phrases come first.
_GUESSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        INTERRUPTED,
        (
            "interrupted",
            "closed the connection",
            "connection to the printer broke",
            "stopped taking the job",
            "connection reset",
            "broken pipe",
        ),
    ),
    (PAPER_OUT, ("out of paper", "paper out", "paper_out", "paper end", "缺纸", "没纸")),
    (NO_FONT, ("font", "字体")),
    (SETUP, ("config.toml", "unknown printer kind", "permission denied")),
    (
        UNREACHABLE,
        (
            "cannot reach",
            "cannot open the printer",
            "connection refused",
            "no route to host",
            "network is unreachable",
            "unreachable",
            "not found",
            "no such file",
            "name or service not known",
        ),
    ),
    (TIMEOUT, ("did not answer in time", "timed out", "timeout")),
    (OFFLINE, ("off line", "offline", "cover open", "cover is open")),
)


def split_error(last_error: str | None) -> tuple[str | None, str | None]:
    """A stored error as (reason code, technical text); pure, so old rows need no migration.

    The code is the text's prefix when it has one, else guessed from its words.
    """
    if not last_error:
        return None, last_error
    head, sep, rest = last_error.partition(": ")
    if sep and head in FAULT_CODES:
        return head, rest
    text = last_error.lower()
    for code, words in _GUESSES:
        if any(word in text for word in words):
            return code, last_error
    return OTHER, last_error


def error_code(last_error: str | None) -> str | None:
    return split_error(last_error)[0]


def error_message(code: str | None) -> Any:
    """The reason in plain words, translated when rendered (lazily, in the reader's language)."""
    if code is None:
        return None
    return REASONS.get(code, REASONS[OTHER])


def setup_message(settings: PrinterSettings | None) -> Any:
    """Who sets up the shop's printer, when it has none or it is switched off."""
    if settings is None:
        return NO_PRINTER
    return None if settings.enabled else PRINTER_DISABLED


def job_view(job: PrintJob) -> dict[str, Any]:
    code, detail = split_error(job.last_error)
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "sale_id": job.sale_id,
        "report_day": job.report_day,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "error_code": code,
        "error_message": error_message(code),
        "error_detail": detail,
        "created_at": job.created_at,
        "printed_at": job.printed_at,
    }


# --- the print state of one sale's receipt -------------------------------------------------

# not_queued: the sale has no job although the shop has a printer now (set up after it).
SALE_PRINT_STATES = (
    "printed",
    "queued",
    "sending",
    "failed",
    "no_printer",
    "disabled",
    "not_queued",
)
_PRINTING = _l("Printing the receipt…")
_SALE_MESSAGES: dict[str, Any] = {
    "printed": _l("Receipt printed."),
    "queued": _PRINTING,
    "sending": _PRINTING,
    "no_printer": NO_PRINTER,
    "disabled": PRINTER_DISABLED,
    "not_queued": _l(
        "No receipt was printed for this sale: the shop had no printer then. Print one "
        "with Reprint (copy)."
    ),
}


@dataclass(frozen=True)
class SalePrint:
    state: str
    job: PrintJob | None = None
    error_code: str | None = None


def print_state(
    job: PrintJob | None, settings: PrinterSettings | None, *, agent_connected: bool = True
) -> tuple[str, str | None]:
    """(state, reason code) of a sale's latest job, for the counter right after the sale.

    A job waiting for a printer that is gone or switched off would wait for ever: that,
    not "printing", is what the clerk needs to hear.
    """
    if job is not None and job.status == JobStatus.PRINTED:
        return "printed", None
    if job is not None and job.status == JobStatus.FAILED:
        return "failed", error_code(job.last_error) or OTHER
    if settings is None:
        return "no_printer", None
    if not settings.enabled:
        return "disabled", None
    if job is None:
        return "not_queued", None
    state = "sending" if job.status == JobStatus.SENDING else "queued"
    return state, None if not settings.via_agent or agent_connected else AGENT_OFFLINE


def sale_print_message(state: str, code: str | None) -> Any:
    """One plain sentence for the clerk, whatever the state."""
    if state == "failed":
        return _l("The receipt did not print. %(reason)s", reason=error_message(code))
    if code is not None:
        return _l("The receipt is waiting to print. %(reason)s", reason=error_message(code))
    return _SALE_MESSAGES[state]


def sale_print(
    session: Session,
    *,
    actor: User,
    sale_id: int,
    defaults: Mapping[str, Any] | None,
    now: datetime,
    agent_seen_within: timedelta,
) -> SalePrint:
    """The print state of the sale's latest receipt or copy (another shop's sale: 404)."""
    sale = _visible_sale(session, actor, sale_id)
    job = session.scalar(
        select(PrintJob)
        .where(PrintJob.sale_id == sale.id, PrintJob.kind.in_([JobKind.RECEIPT, JobKind.COPY]))
        .order_by(PrintJob.id.desc())
        .limit(1)
    )
    settings = None
    agent_connected = True
    if job is None or job.status in (JobStatus.QUEUED, JobStatus.SENDING):
        shop = session.get(Shop, sale.shop_id)
        assert shop is not None
        settings = printer_settings(session, shop, defaults=defaults)
        if settings is not None and settings.via_agent:
            seen, _state = agent_last_seen(session, shop.id)
            agent_connected = seen is not None and now - seen < agent_seen_within
    state, code = print_state(job, settings, agent_connected=agent_connected)
    return SalePrint(state=state, job=job, error_code=code)

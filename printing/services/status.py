"""The printer as the counter sees it: its queue and last failure, and one sale's print state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.auth import User
from inventory import services as inventory
from inventory.models import Shop
from pos import services as pos
from printing.devices import AGENT_OFFLINE, OTHER
from printing.models import JobKind, JobStatus, PrintJob
from printing.services.leases import agent_last_seen
from printing.services.reasons import NO_PRINTER, PRINTER_DISABLED, error_code, error_message
from printing.services.settings import PrinterSettings, printer_settings

FAILED_SHOWN_FOR = timedelta(hours=12)


@dataclass
class PrinterOverview:
    """The counter's printer line, read in one transaction; the live status is asked after."""

    shop_code: str
    shop_name: str
    printer: PrinterSettings | None
    queued: int = 0
    last_failed: PrintJob | None = None
    last_job: PrintJob | None = None
    agent_seen_at: datetime | None = None
    agent_printer_state: str | None = None
    status: dict[str, Any] = field(default_factory=dict)


def printer_overview(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    defaults: Mapping[str, Any] | None,
    now: datetime,
) -> PrinterOverview:
    """The counter's printer line: the set-up, the queue, the latest failure (no live status)."""
    actor.require_shop_staff(shop_code)
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
    sale = pos.get_sale(session, actor=actor, sale_id=sale_id)
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

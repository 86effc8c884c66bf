"""JSON API of receipt printing: printer state, print jobs, reprints, and the shop's print agent."""

from __future__ import annotations

import base64
import time
from datetime import date, timedelta
from typing import Any

from flask import Response, current_app

from accounts.auth import Role, api_actor, roles_required
from core.api import Blueprint
from core.db import db, run_unit_of_work, transactional, utcnow
from core.timeutil import business_day, local_tz
from inventory import services as inventory
from printing import services, wakeup, worker
from printing.models import PrintJob
from printing.schemas import (
    AckIn,
    AgentOut,
    FailIn,
    LeasedJobOut,
    NextJobQuery,
    PrinterConfigOut,
    PrinterIn,
    PrinterOut,
    PrintIn,
    PrintJobList,
    PrintJobOut,
    ReportPrintQuery,
    SalePrintOut,
    ShopJobsQuery,
)

blp = Blueprint(
    "pos_printing_api", __name__, url_prefix="/api/v1", description="Receipt printers and jobs"
)

SHOP_STAFF = (Role.ADMIN, Role.MANAGER, Role.CLERK)
MANAGERS = (Role.ADMIN, Role.MANAGER)
AGENTS = (Role.ADMIN, Role.PRINT_AGENT, Role.SHOP_NODE)


def _defaults() -> Any:
    return current_app.config.get("PRINTERS")


def _config_view(settings: services.PrinterSettings | None) -> dict[str, Any] | None:
    if settings is None:
        return None
    return {
        "kind": settings.kind,
        "connection": settings.connection,
        "paper_mm": settings.paper_mm,
        "mode": settings.mode,
        "profile": settings.profile,
        "via_agent": settings.via_agent,
        "enabled": settings.enabled,
        "source": settings.source,
    }


# --- the counter's side ----------------------------------------------------------------------


@blp.route("/shops/<string:code>/printer", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, PrinterOut)
def get_printer(code: str) -> Any:
    """The shop's printer: its set-up, its live status, the queue and the latest failed job."""
    overview = services.printer_overview(
        db.session, actor=api_actor(), shop_code=code, defaults=_defaults(), now=utcnow()
    )
    answer = {
        "shop_code": overview.shop_code,
        "configured": overview.printer is not None,
        "printer": _config_view(overview.printer),
        "queued": overview.queued,
        "last_failed_job": services.job_view(overview.last_failed)
        if overview.last_failed
        else None,
        "last_job": services.job_view(overview.last_job) if overview.last_job else None,
        "setup_message": services.setup_message(overview.printer),
    }
    # End the read before asking the printer: on SQLite it holds the write lock.
    db.session.rollback()
    answer["status"] = (
        worker.live_status(
            overview.printer,
            agent_seen_at=overview.agent_seen_at,
            agent_printer_state=overview.agent_printer_state,
        )
        if overview.printer
        else {"state": "none"}
    )
    return answer


@blp.route("/shops/<string:code>/printer", methods=["PUT"])
@roles_required(Role.ADMIN)
@blp.arguments(PrinterIn)
@blp.response(200, PrinterConfigOut)
@transactional()
def put_printer(data: dict[str, Any], code: str) -> Any:
    """Set up the shop's printer (admin); it replaces any config.toml default."""
    settings = services.save_printer(
        db.session,
        actor=api_actor(),
        shop_code=code,
        now=utcnow(),
        printers=worker.state().printers,
        **data,
    )
    return _config_view(settings)


@blp.route("/shops/<string:code>/print-jobs", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.arguments(ShopJobsQuery, location="query")
@blp.response(200, PrintJobList)
def shop_jobs(query: dict[str, Any], code: str) -> Any:
    """The shop's latest print jobs (by report day or status)."""
    jobs = services.jobs_for_shop(
        db.session,
        actor=api_actor(),
        shop_code=code,
        report_day=query["report_date"],
        status=query["status"],
    )
    return {"jobs": [services.job_view(job) for job in jobs]}


@blp.route("/sales/<id:sale_id>/print-jobs", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, PrintJobList)
def sale_jobs(sale_id: int) -> Any:
    jobs = services.jobs_for_sale(db.session, actor=api_actor(), sale_id=sale_id)
    return {"jobs": [services.job_view(job) for job in jobs]}


@blp.route("/sales/<id:sale_id>/print", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, SalePrintOut)
def sale_print(sale_id: int) -> Any:
    """Whether the sale's receipt printed, for the counter right after the sale.

    The latest receipt or copy of the sale; a sale without one tells whether the shop has
    a printer. Another shop's sale is as absent as a sale that never was (404).
    """
    found = services.sale_print(
        db.session,
        actor=api_actor(),
        sale_id=sale_id,
        defaults=_defaults(),
        now=utcnow(),
        agent_seen_within=timedelta(
            seconds=float(current_app.config.get("PRINT_AGENT_SEEN_SECONDS", 90))
        ),
    )
    job = found.job
    return {
        "state": found.state,
        "job_id": job.id if job else None,
        "kind": job.kind if job else None,
        "attempts": job.attempts if job else None,
        "error_code": found.error_code,
        "error_message": services.error_message(found.error_code),
        "message": services.sale_print_message(found.state, found.error_code),
    }


@blp.route("/sales/<id:sale_id>/print", methods=["POST"])
@roles_required(*SHOP_STAFF)
@blp.arguments(PrintIn)
@blp.response(201, PrintJobOut)
@transactional()
def reprint(data: dict[str, Any], sale_id: int) -> Any:
    """Print the receipt again, marked as a copy."""
    job = services.reprint_sale(
        db.session,
        actor=api_actor(),
        sale_id=sale_id,
        idempotency_key=data["idempotency_key"],
        defaults=_defaults(),
        now=utcnow(),
    )
    return services.job_view(job)


@blp.route("/print-jobs/<id:job_id>/retry", methods=["POST"])
@roles_required(*SHOP_STAFF)
@blp.response(200, PrintJobOut)
@transactional()
def retry(job_id: int) -> Any:
    """A failed job goes back to the queue (a queued or sending job is left as it is)."""
    job = services.retry_job(db.session, actor=api_actor(), job_id=job_id, now=utcnow())
    return services.job_view(job)


@blp.route("/shops/<string:code>/reports/daily/print", methods=["POST"])
@roles_required(*MANAGERS)
@blp.arguments(ReportPrintQuery, location="query")
@blp.arguments(PrintIn)
@blp.response(201, PrintJobOut)
@transactional()
def print_report(query: dict[str, Any], data: dict[str, Any], code: str) -> Any:
    """The day's report on the shop's receipt printer."""
    day: date = query["date"] or business_day(utcnow(), local_tz())
    job = services.print_daily_report(
        db.session,
        actor=api_actor(),
        shop_code=code,
        day=day,
        idempotency_key=data["idempotency_key"],
        defaults=_defaults(),
        now=utcnow(),
    )
    return services.job_view(job)


# --- the print agent's side ------------------------------------------------------------------


@blp.route("/print-agent", methods=["GET"])
@roles_required(Role.PRINT_AGENT, Role.SHOP_NODE)
@blp.response(200, AgentOut)
def agent_identity() -> Any:
    """Whom a print agent's token prints for: the shop, and its printer as set up centrally."""
    actor = api_actor()
    shop = inventory.get_shop(db.session, actor.shop_code or "")
    settings = services.printer_settings(db.session, shop, defaults=_defaults())
    return {"shop_code": shop.code, "username": actor.username, "printer": _config_view(settings)}


def _lease_once(code: str) -> dict[str, Any] | None:
    """Lease the shop's next job and render it; a job that cannot be rendered is failed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    actor = api_actor()
    lease_seconds = float(app.config.get("PRINT_LEASE_SECONDS", 60))
    while True:
        leased = run_unit_of_work(lambda: _lease_and_copy(actor, code, lease_seconds))
        if leased is None:
            return None
        job_id, lease, settings = leased
        try:
            data = run_unit_of_work(lambda: _render(job_id, settings))  # noqa: B023
        except Exception as exc:
            current_app.logger.exception("print job %s could not be rendered", job_id)
            error = worker.render_error(exc)
            _fail_leased(actor, job_id, lease, error)
            continue
        job = db.session.get(PrintJob, job_id)
        assert job is not None
        answer = {
            "id": job.id,
            "kind": job.kind,
            "lease": lease,
            "lease_expires_at": job.leased_until,
            "sale_id": job.sale_id,
            "report_day": job.report_day,
            "paper_mm": settings.paper_mm,
            "data": base64.b64encode(data).decode("ascii"),
        }
        db.session.rollback()
        return answer


def _fail_leased(actor: Any, job_id: int, lease: str, error: str) -> None:
    run_unit_of_work(
        lambda: services.agent_finish(
            db.session, actor=actor, job_id=job_id, lease=lease, now=utcnow(), error=error
        )
    )


def _lease_and_copy(actor: Any, code: str, lease_seconds: float) -> Any:
    found = services.lease_next(
        db.session,
        actor=actor,
        shop_code=code,
        now=utcnow(),
        lease_seconds=lease_seconds,
        defaults=_defaults(),
    )
    if found is None:
        return None
    job, settings = found
    if settings is None:
        shop = inventory.get_shop(db.session, code)
        settings = services.PrinterSettings(
            shop_id=shop.id, shop_code=code, kind="file", connection={}
        )
    return job.id, job.lease_id, settings


def _render(job_id: int, settings: services.PrinterSettings) -> bytes:
    job = db.session.get(PrintJob, job_id)
    assert job is not None
    return worker.render(job, settings)


@blp.route("/shops/<string:code>/print-jobs/next", methods=["GET"])
@roles_required(Role.PRINT_AGENT, Role.SHOP_NODE)
@blp.arguments(NextJobQuery, location="query")
@blp.response(200, LeasedJobOut)
@blp.alt_response(204, description="No job came within the wait")
def next_job(query: dict[str, Any], code: str) -> Any:
    """The print agent's long poll: lease the shop's next job, or 204 after `wait` seconds.

    The job's bytes are rendered here from the shop's printer settings. A lease not
    acknowledged in time returns the job to the queue; the agent's journal keeps a job
    it printed but could not acknowledge from printing twice.
    """
    actor = api_actor()
    services.require_print_agent(actor, code)
    st = worker.state()
    shop = inventory.get_shop(db.session, code)
    shop_id = shop.id
    run_unit_of_work(
        lambda: services.agent_seen(
            db.session,
            shop_id=shop_id,
            user_id=actor.id,
            now=utcnow(),
            printer_state=query["printer"],
        )
    )
    cap = float(current_app.config.get("PRINT_LONG_POLL_MAX_SECONDS", 25))
    deadline = time.monotonic() + min(float(query["wait"]), cap)
    db_poll = float(current_app.config.get("PRINT_DB_POLL_SECONDS", 1.0))
    # A waiting agent holds a server thread: only a few may wait at once, the rest come back.
    slot = query["wait"] > 0 and st.long_poll_slots.acquire(blocking=False)
    try:
        while True:
            seen = wakeup.generation(shop_id)
            found = _lease_once(code)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if not slot or remaining <= 0:
                response = Response(status=204)
                if query["wait"] > 0 and not slot:
                    response.headers["Retry-After"] = "2"
                return response
            wakeup.wait_for_jobs(shop_id, seen, timeout=min(db_poll, remaining))
    finally:
        if slot:
            st.long_poll_slots.release()


@blp.route("/print-jobs/<id:job_id>/ack", methods=["POST"])
@roles_required(*AGENTS)
@blp.arguments(AckIn)
@blp.response(200, PrintJobOut)
@transactional()
def ack(data: dict[str, Any], job_id: int) -> Any:
    """The agent printed the job. Acknowledging twice changes nothing."""
    job = services.agent_finish(
        db.session, actor=api_actor(), job_id=job_id, lease=data["lease"], now=utcnow()
    )
    return services.job_view(job)


@blp.route("/print-jobs/<id:job_id>/fail", methods=["POST"])
@roles_required(*AGENTS)
@blp.arguments(FailIn)
@blp.response(200, PrintJobOut)
@transactional()
def fail(data: dict[str, Any], job_id: int) -> Any:
    """The agent's printer refused the job: failed, for the clerk to retry."""
    job = services.agent_finish(
        db.session,
        actor=api_actor(),
        job_id=job_id,
        lease=data["lease"],
        now=utcnow(),
        error=(data["error"] or "the agent's printer failed").strip() or "printer failed",
    )
    return services.job_view(job)

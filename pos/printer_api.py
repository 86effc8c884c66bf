"""JSON API of receipt printing: printer state, print jobs, reprints, and the shop's print agent."""

from __future__ import annotations

import base64
import time
from datetime import date, timedelta
from typing import Any

from flask import Response, current_app
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from accounts.auth import Role, api_actor, roles_required
from core.api import BaseSchema, Blueprint, LocalDateTime, idempotency_key_field
from core.db import db, run_unit_of_work, transactional, utcnow
from core.errors import Forbidden
from core.timeutil import business_day, local_tz
from inventory import services as inventory
from pos import print_worker, printing
from pos.printer_devices import KINDS, STATES

blp = Blueprint(
    "pos_printing_api", __name__, url_prefix="/api/v1", description="Receipt printers and jobs"
)

SHOP_STAFF = (Role.ADMIN, Role.MANAGER, Role.CLERK)
MANAGERS = (Role.ADMIN, Role.MANAGER)
AGENTS = (Role.ADMIN, Role.PRINT_AGENT)


# --- schemas -------------------------------------------------------------------------------


class PrintJobOut(BaseSchema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "receipt, copy or report"})
    status = fields.String(metadata={"description": "queued, sending, printed or failed"})
    sale_id = fields.Integer(allow_none=True)
    report_day = fields.Date(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.String(
        allow_none=True, metadata={"description": "the technical text, for the county office"}
    )
    error_code = fields.String(
        allow_none=True,
        metadata={"description": "why it did not print: " + ", ".join(printing.REASONS)},
    )
    error_message = fields.String(
        allow_none=True,
        metadata={"description": "the reason in plain words, in the request's language"},
    )
    error_detail = fields.String(
        allow_none=True, metadata={"description": "last_error without its reason code"}
    )
    created_at = LocalDateTime()
    printed_at = LocalDateTime(allow_none=True)


class PrintJobList(BaseSchema):
    jobs = fields.List(fields.Nested(PrintJobOut))


class PrintIn(BaseSchema):
    idempotency_key = idempotency_key_field()


class ReportPrintQuery(BaseSchema):
    date = fields.Date(load_default=None)


class ShopJobsQuery(BaseSchema):
    report_date = fields.Date(load_default=None)
    status = fields.String(
        load_default=None, validate=validate.OneOf(["queued", "sending", "printed", "failed"])
    )


class PrinterStatusOut(BaseSchema):
    state = fields.String(
        metadata={
            "description": "online, offline, paper_near_end, paper_out, unreachable, unknown, "
            "printing, disabled, agent_connected, agent_offline, none"
        }
    )
    online = fields.Boolean(allow_none=True)
    paper = fields.String(allow_none=True, metadata={"description": "ok, near_end or out"})
    detail = fields.String(allow_none=True)
    checked_at = LocalDateTime(allow_none=True)
    agent_seen_at = LocalDateTime(allow_none=True)


class PrinterConfigOut(BaseSchema):
    kind = fields.String()
    connection = fields.Dict()
    paper_mm = fields.Integer()
    mode = fields.String()
    profile = fields.String(allow_none=True)
    via_agent = fields.Boolean()
    enabled = fields.Boolean()
    source = fields.String(metadata={"description": "database or config (config.toml)"})


class PrinterOut(BaseSchema):
    shop_code = fields.String()
    configured = fields.Boolean()
    printer = fields.Nested(PrinterConfigOut, allow_none=True)
    status = fields.Nested(PrinterStatusOut)
    queued = fields.Integer()
    last_failed_job = fields.Nested(PrintJobOut, allow_none=True)
    last_job = fields.Nested(PrintJobOut, allow_none=True)
    setup_message = fields.String(
        allow_none=True,
        metadata={
            "description": "with no printer or printing switched off: who sets it up, in "
            "plain words"
        },
    )


class SalePrintOut(BaseSchema):
    state = fields.String(metadata={"description": ", ".join(printing.SALE_PRINT_STATES)})
    job_id = fields.Integer(allow_none=True)
    kind = fields.String(allow_none=True, metadata={"description": "receipt or copy"})
    attempts = fields.Integer(allow_none=True)
    error_code = fields.String(
        allow_none=True,
        metadata={"description": "failed: why; queued via an absent agent: agent_offline"},
    )
    error_message = fields.String(allow_none=True)
    message = fields.String(metadata={"description": "one plain sentence for the clerk"})


class PrinterIn(BaseSchema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    connection = fields.Dict(keys=fields.String(), load_default=dict)
    paper_mm = fields.Integer(load_default=58, strict=True, validate=validate.OneOf([58, 80]))
    mode = fields.String(load_default="text", validate=validate.OneOf(["text", "image"]))
    profile = fields.String(load_default=None, allow_none=True)
    via_agent = fields.Boolean(load_default=False)
    enabled = fields.Boolean(load_default=True)


class NextJobQuery(BaseSchema):
    wait = fields.Integer(load_default=0, validate=validate.Range(0, 60))
    printer = fields.String(
        load_default=None,
        validate=validate.OneOf(STATES),
        metadata={"description": "how the agent found its printer (DLE EOT at the shop)"},
    )


class LeasedJobOut(BaseSchema):
    id = fields.Integer()
    kind = fields.String()
    lease = fields.String()
    lease_expires_at = LocalDateTime()
    sale_id = fields.Integer(allow_none=True)
    report_day = fields.Date(allow_none=True)
    paper_mm = fields.Integer()
    data = fields.String(metadata={"description": "the job's ESC/POS bytes, base64"})


class AckIn(BaseSchema):
    lease = fields.String(required=True, validate=validate.Length(min=1, max=64))


class FailIn(BaseSchema):
    lease = fields.String(required=True, validate=validate.Length(min=1, max=64))
    error = fields.String(load_default="", validate=validate.Length(max=2000))


def _defaults() -> Any:
    return current_app.config.get("PRINTERS")


def _config_view(settings: printing.PrinterSettings | None) -> dict[str, Any] | None:
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
    overview = printing.printer_overview(
        db.session, actor=api_actor(), shop_code=code, defaults=_defaults(), now=utcnow()
    )
    answer = {
        "shop_code": overview.shop_code,
        "configured": overview.printer is not None,
        "printer": _config_view(overview.printer),
        "queued": overview.queued,
        "last_failed_job": printing.job_view(overview.last_failed)
        if overview.last_failed
        else None,
        "last_job": printing.job_view(overview.last_job) if overview.last_job else None,
        "setup_message": printing.setup_message(overview.printer),
    }
    # End the read before asking the printer: on SQLite it holds the write lock.
    db.session.rollback()
    answer["status"] = (
        print_worker.live_status(
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
    settings = printing.save_printer(
        db.session, actor=api_actor(), shop_code=code, now=utcnow(), **data
    )
    return _config_view(settings)


@blp.route("/shops/<string:code>/print-jobs", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.arguments(ShopJobsQuery, location="query")
@blp.response(200, PrintJobList)
def shop_jobs(query: dict[str, Any], code: str) -> Any:
    """The shop's latest print jobs (by report day or status)."""
    jobs = printing.jobs_for_shop(
        db.session,
        actor=api_actor(),
        shop_code=code,
        report_day=query["report_date"],
        status=query["status"],
    )
    return {"jobs": [printing.job_view(job) for job in jobs]}


@blp.route("/sales/<id:sale_id>/print-jobs", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, PrintJobList)
def sale_jobs(sale_id: int) -> Any:
    jobs = printing.jobs_for_sale(db.session, actor=api_actor(), sale_id=sale_id)
    return {"jobs": [printing.job_view(job) for job in jobs]}


@blp.route("/sales/<id:sale_id>/print", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, SalePrintOut)
def sale_print(sale_id: int) -> Any:
    """Whether the sale's receipt printed, for the counter right after the sale.

    The latest receipt or copy of the sale; a sale without one tells whether the shop has
    a printer. Another shop's sale is as absent as a sale that never was (404).
    """
    found = printing.sale_print(
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
        "error_message": printing.error_message(found.error_code),
        "message": printing.sale_print_message(found.state, found.error_code),
    }


@blp.route("/sales/<id:sale_id>/print", methods=["POST"])
@roles_required(*SHOP_STAFF)
@blp.arguments(PrintIn)
@blp.response(201, PrintJobOut)
@transactional()
def reprint(data: dict[str, Any], sale_id: int) -> Any:
    """Print the receipt again, marked as a copy."""
    job = printing.reprint_sale(
        db.session,
        actor=api_actor(),
        sale_id=sale_id,
        idempotency_key=data["idempotency_key"],
        defaults=_defaults(),
        now=utcnow(),
    )
    return printing.job_view(job)


@blp.route("/print-jobs/<id:job_id>/retry", methods=["POST"])
@roles_required(*SHOP_STAFF)
@blp.response(200, PrintJobOut)
@transactional()
def retry(job_id: int) -> Any:
    """A failed job goes back to the queue (a queued or sending job is left as it is)."""
    job = printing.retry_job(db.session, actor=api_actor(), job_id=job_id, now=utcnow())
    return printing.job_view(job)


@blp.route("/shops/<string:code>/reports/daily/print", methods=["POST"])
@roles_required(*MANAGERS)
@blp.arguments(ReportPrintQuery, location="query")
@blp.arguments(PrintIn)
@blp.response(201, PrintJobOut)
@transactional()
def print_report(query: dict[str, Any], data: dict[str, Any], code: str) -> Any:
    """The day's report on the shop's receipt printer."""
    day: date = query["date"] or business_day(utcnow(), local_tz())
    job = printing.print_daily_report(
        db.session,
        actor=api_actor(),
        shop_code=code,
        day=day,
        idempotency_key=data["idempotency_key"],
        defaults=_defaults(),
        now=utcnow(),
    )
    return printing.job_view(job)


# --- the print agent's side ------------------------------------------------------------------


class AgentOut(BaseSchema):
    shop_code = fields.String()
    username = fields.String()
    printer = fields.Nested(PrinterConfigOut, allow_none=True)


@blp.route("/print-agent", methods=["GET"])
@roles_required(Role.PRINT_AGENT)
@blp.response(200, AgentOut)
def agent_identity() -> Any:
    """Whom a print agent's token prints for: the shop, and its printer as set up centrally."""
    actor = api_actor()
    shop = inventory.get_shop(db.session, actor.shop_code or "")
    settings = printing.printer_settings(db.session, shop, defaults=_defaults())
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
            error = print_worker.render_error(exc)
            _fail_leased(actor, job_id, lease, error)
            continue
        job = db.session.get(printing.PrintJob, job_id)
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
        lambda: printing.agent_finish(
            db.session, actor=actor, job_id=job_id, lease=lease, now=utcnow(), error=error
        )
    )


def _lease_and_copy(actor: Any, code: str, lease_seconds: float) -> Any:
    found = printing.lease_next(
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
        settings = printing.PrinterSettings(
            shop_id=shop.id, shop_code=code, kind="file", connection={}
        )
    return job.id, job.lease_id, settings


def _render(job_id: int, settings: printing.PrinterSettings) -> bytes:
    job = db.session.get(printing.PrintJob, job_id)
    assert job is not None
    return print_worker.render(job, settings)


@blp.route("/shops/<string:code>/print-jobs/next", methods=["GET"])
@roles_required(Role.PRINT_AGENT)
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
    if not actor.may_fetch_print_jobs(code):
        raise Forbidden(_l("only shop %(shop_code)s's print agent may do this", shop_code=code))
    st = print_worker.state()
    shop = inventory.get_shop(db.session, code)
    shop_id = shop.id
    run_unit_of_work(
        lambda: printing.agent_seen(
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
            seen = print_worker.generation(shop_id)
            found = _lease_once(code)
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if not slot or remaining <= 0:
                response = Response(status=204)
                if query["wait"] > 0 and not slot:
                    response.headers["Retry-After"] = "2"
                return response
            print_worker.wait_for_jobs(shop_id, seen, timeout=min(db_poll, remaining))
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
    job = printing.agent_finish(
        db.session, actor=api_actor(), job_id=job_id, lease=data["lease"], now=utcnow()
    )
    return printing.job_view(job)


@blp.route("/print-jobs/<id:job_id>/fail", methods=["POST"])
@roles_required(*AGENTS)
@blp.arguments(FailIn)
@blp.response(200, PrintJobOut)
@transactional()
def fail(data: dict[str, Any], job_id: int) -> Any:
    """The agent's printer refused the job: failed, for the clerk to retry."""
    job = printing.agent_finish(
        db.session,
        actor=api_actor(),
        job_id=job_id,
        lease=data["lease"],
        now=utcnow(),
        error=(data["error"] or "the agent's printer failed").strip() or "printer failed",
    )
    return printing.job_view(job)

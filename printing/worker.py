"""The server's print worker: a thread per shop sends its queued jobs one by one; live status."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale

from core.db import db, utcnow
from core.errors import DomainError
from core.fonts import FontMissing, find_cjk_font
from core.timeutil import local_tz
from printing import services, wakeup
from printing.devices import (
    DEFAULT_TIMEOUT,
    NO_FONT,
    OTHER,
    SETUP,
    PrinterFault,
    fault_code,
    fault_text,
    query_status,
)
from printing.devices import send_job as send_to_device
from printing.models import PrintJob

log = logging.getLogger(__name__)

EXTENSION = "printing"


class PrintingState:
    """What one app's printing keeps in memory: printer locks, caches, agents, waiters."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.locks: dict[int, threading.Lock] = {}
        self.status_cache: dict[int, tuple[float, dict[str, Any]]] = {}
        self.long_poll_slots = threading.BoundedSemaphore(
            int(app.config.get("PRINT_LONG_POLL_SLOTS", 4))
        )
        self.worker: PrintWorker | None = None
        self.printers = services.PrinterCache()
        self._guard = threading.Lock()

    def printer_lock(self, shop_id: int) -> threading.Lock:
        # One job (or status query) at a time per printer: most take one connection only.
        with self._guard:
            return self.locks.setdefault(shop_id, threading.Lock())


def state(app: Flask | None = None) -> PrintingState:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions.setdefault(EXTENSION, PrintingState(app))
    return found


# --- sending one job -----------------------------------------------------------------------


def send_job(job_id: int, *, timeout: float | None = None) -> str:
    """Send one queued job to its shop's printer now; answer the job's status afterwards.

    Three short transactions: claim and render, then (no transaction open) the printer,
    then printed or failed. A printer fault fails the job, retriable; the sale is untouched.
    Needs an app context; the print worker's threads and tests call it.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    session = db.session
    defaults = app.config.get("PRINTERS")
    job = session.get(PrintJob, job_id)
    if job is None:
        session.rollback()
        return "missing"
    try:
        settings = services.printer_settings_by_id(session, job.shop_id, defaults=defaults)
    except DomainError as exc:
        # A broken config.toml table: say so on the job rather than leave it queued forever.
        lease = services.claim_job(session, job_id, now=utcnow(), lease_seconds=60)
        if lease is not None:
            error = fault_text(SETUP, str(exc.detail))
            services.finish_job(session, job_id, lease=lease, now=utcnow(), error=error)
        session.commit()
        return "failed" if lease else "taken"
    if settings is None or not settings.direct:
        status = job.status
        session.rollback()
        return status
    lease = services.claim_job(
        session,
        job_id,
        now=utcnow(),
        lease_seconds=float(app.config.get("PRINT_SEND_LEASE_SECONDS", 120)),
    )
    if lease is None:
        session.rollback()
        return "taken"
    error: str | None = None
    data = b""
    try:
        session.refresh(job)
        data = render(job, settings)
    except Exception as exc:
        log.exception("print job %s could not be rendered", job_id)
        error = render_error(exc)
    session.commit()
    if error is None:
        seconds = float(
            settings.connection.get("timeout")
            or timeout
            or app.config.get("PRINT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT)
        )
        try:
            with state(app).printer_lock(settings.shop_id):
                send_to_device(
                    settings.kind,
                    settings.connection,
                    data,
                    timeout=seconds,
                    confirm=settings.connection.get("confirm"),
                )
        except PrinterFault as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("print job %s: unexpected printer error", job_id)
            error = fault_text(fault_code(exc, OTHER), f"printer error: {exc}")
    if error:
        log.warning("print job %s failed: %s", job_id, error)
    services.finish_job(session, job_id, lease=lease, now=utcnow(), error=error)
    session.commit()
    return "failed" if error else "printed"


def render_error(exc: Exception) -> str:
    """A job that could not be rendered, as stored: the missing font is the usual cause.

    The font's own message is translated into the server's language; its code is not.
    """
    code = NO_FONT if isinstance(exc, FontMissing) else OTHER
    return fault_text(code, f"cannot render the job: {exc}")


def render(job: PrintJob, settings: services.PrinterSettings) -> bytes:
    """The job's bytes in the app's default language (the server's, not a browser's)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    font = None
    if settings.mode == "image":
        font = str(find_cjk_font(app.config.get("CJK_FONT_PATH")))
    with force_locale(app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN")):
        return services.render_job(db.session, job, settings, tz=local_tz(), font_path=font)


# --- live status -----------------------------------------------------------------------------


# What an agent's report of its printer means for the counter's fields: (online, paper).
_AGENT_REPORTED = {
    "online": (True, "ok"),
    "paper_near_end": (True, "near_end"),
    "paper_out": (None, "out"),
    "offline": (False, None),
    "unreachable": (False, None),
}


def live_status(
    settings: services.PrinterSettings,
    *,
    agent_seen_at: Any = None,
    agent_printer_state: str | None = None,
    app: Flask | None = None,
) -> dict[str, Any]:
    """The printer's own word (DLE EOT for network printers), cached a few seconds.

    A shop printing through its agent has the agent's word instead: a fault it reported
    (out of paper, off line, unreachable) is the state, as long as the agent is there.
    Call with no transaction open: the query waits on the network.
    """
    st = state(app)
    if settings.via_agent:
        seen = agent_seen_at
        fresh = seen is not None and (utcnow() - seen).total_seconds() < float(
            st.app.config.get("PRINT_AGENT_SEEN_SECONDS", 90)
        )
        if not fresh:
            return {"state": "agent_offline", "agent_seen_at": seen}
        online, paper = _AGENT_REPORTED.get(agent_printer_state or "", (None, None))
        reported_fault = agent_printer_state not in (None, "online", "unknown")
        return {
            "state": agent_printer_state if reported_fault else "agent_connected",
            "online": online,
            "paper": paper,
            "checked_at": seen if agent_printer_state else None,
            "agent_seen_at": seen,
        }
    if not settings.enabled:
        return {"state": "disabled"}
    now = time.monotonic()
    hit = st.status_cache.get(settings.shop_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    lock = st.printer_lock(settings.shop_id)
    if not lock.acquire(blocking=False):
        return {"state": "printing"}
    try:
        found = query_status(
            settings.kind,
            settings.connection,
            timeout=float(st.app.config.get("PRINT_STATUS_TIMEOUT_SECONDS", 1.0)),
        )
    finally:
        lock.release()
    answer = {
        "state": found.state,
        "online": found.online,
        "paper": found.paper,
        "detail": found.detail,
        "checked_at": utcnow(),
    }
    st.status_cache[settings.shop_id] = (
        now + float(st.app.config.get("PRINT_STATUS_CACHE_SECONDS", 3)),
        answer,
    )
    return answer


# --- the worker threads ----------------------------------------------------------------------


class PrintWorker:
    """One dispatcher thread finds queued jobs; one thread per shop sends them in order."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.poll_seconds = float(app.config.get("PRINT_POLL_SECONDS", 5))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queues: dict[int, queue.Queue[int]] = {}
        self._in_flight: set[int] = set()
        self._guard = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        wakeup.add_sleeper(self)
        thread = threading.Thread(target=self._dispatch, name="print-dispatch", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        wakeup.remove_sleeper(self)

    def wake(self) -> None:
        self._wake.set()

    def _dispatch(self) -> None:
        # Jobs queued before a restart are found on the first turn.
        while not self._stop.is_set():
            try:
                self._dispatch_once()
            except Exception:
                log.exception("print dispatcher: cannot read the queue")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _dispatch_once(self) -> None:
        with self.app.app_context():
            try:
                services.fail_interrupted(db.session, now=utcnow())
                found = services.queued_direct_jobs(
                    db.session, defaults=self.app.config.get("PRINTERS")
                )
                db.session.commit()
            finally:
                db.session.remove()
        for shop_id, job_id in found:
            with self._guard:
                if job_id in self._in_flight:
                    continue
                self._in_flight.add(job_id)
                jobs = self._queues.get(shop_id)
                if jobs is None:
                    jobs = self._queues[shop_id] = queue.Queue()
                    thread = threading.Thread(
                        target=self._send_loop,
                        args=(jobs,),
                        name=f"print-shop-{shop_id}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)
            jobs.put(job_id)

    def _send_loop(self, jobs: queue.Queue[int]) -> None:
        while not self._stop.is_set():
            try:
                job_id = jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                with self.app.app_context():
                    try:
                        send_job(job_id)
                    finally:
                        db.session.remove()
            except Exception:
                log.exception("print job %s: the worker failed", job_id)
            finally:
                with self._guard:
                    self._in_flight.discard(job_id)


def ensure_worker(app: Flask) -> None:
    """Start the app's print worker once, in a process that serves requests."""
    st = state(app)
    if st.worker is not None or not _flag(app.config.get("PRINT_WORKER", not app.testing)):
        return
    with st._guard:
        if st.worker is None:
            worker = PrintWorker(app)
            worker.start()
            st.worker = worker


def _flag(value: Any) -> bool:
    # INTEGRITY_POS_PRINT_WORKER=0 arrives from the environment as the string "0".
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)

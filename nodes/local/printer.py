"""The node's printing: offline sales' receipts from the store, the county's jobs online.

`NodePrinter(store, spec, server_url=..., token=..., shop_code=..., state_dir=...)`:
`.start()` runs two daemon threads. One prints the offline receipts queued in the store
(node_print_queue), each once: it is marked `sending` (committed) before the printer
gets it and `printed` after, so a crash in between leaves it `failed` (reprint by hand)
rather than printed twice; a printer that is off leaves it queued, tried again later,
and never holds up a sale. The other is the shop's print agent (printing.agent.Agent)
against the county with the node's token, with its own journal for exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db import utcnow
from nodes.local import offline
from nodes.local.models import PrintQueueItem
from nodes.local.store import Store, set_state
from pos.receipts.layout import PAPER
from printing.agent import Agent, AgentRefused
from printing.devices import INTERRUPTED, PrinterFault, parse_spec, send_job

log = logging.getLogger("integrity_pos.shop_node.printer")

# Seconds between tries of a printer that did not take a job, doubling up to the cap.
RETRY_FIRST = 2.0
RETRY_CAP = 60.0
IDLE_POLL = 1.0


def print_state(session: Session, sale_id: int) -> dict[str, Any]:
    """The counter's print state of an offline sale (GET /sales/{id}/print's body)."""
    return offline.print_state(session, sale_id)


def recover_interrupted(session: Session) -> int:
    """Receipts a crash caught while sending: failed, never printed again by themselves."""
    result = session.execute(
        update(PrintQueueItem)
        .where(PrintQueueItem.status == "sending")
        .values(
            status="failed",
            error_code=INTERRUPTED,
            last_error="the node stopped while sending",
        )
    )
    return int(result.rowcount or 0)


class NodePrinter:
    """Prints the node's offline receipts; runs the print agent for the county's jobs."""

    def __init__(
        self,
        store: Store,
        spec: str,
        *,
        server_url: str | None = None,
        token: str | None = None,
        shop_code: str | None = None,
        state_dir: Path | None = None,
        paper_mm: int = 58,
        mode: str = "text",
        printer_timeout: float = 5.0,
        run_agent: bool = True,
        app: Flask | None = None,
    ) -> None:
        self.store = store
        # The local app: its catalogues put the receipt in the shop's language. A bare
        # thread has no app, and lazy strings would print as their English msgids.
        self.app = app
        self.spec = spec
        self.kind, self.conn = parse_spec(spec)
        self.paper_mm = paper_mm
        self.mode = mode
        self.printer_timeout = printer_timeout
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.agent: Agent | None = None
        if run_agent and server_url and token:
            self.agent = Agent(
                server=server_url,
                token=token,
                printer=spec,
                shop=shop_code,
                state_dir=(state_dir or store.path.parent) / "print-agent",
                printer_timeout=printer_timeout,
            )
        with store.session() as session:
            set_state(session, offline.PRINTER, {"spec": spec, "paper_mm": paper_mm, "mode": mode})
            recover_interrupted(session)

    def start(self) -> None:
        self._stop.clear()
        targets = [("node-print", self._loop)]
        if self.agent is not None:
            targets.append(("node-print-agent", self._agent_loop))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def wake(self) -> None:
        """A sale was queued: print it now rather than at the next turn."""
        self._wake.set()

    def _agent_loop(self) -> None:
        assert self.agent is not None
        try:
            self.agent.run(self._stop)
        except AgentRefused as exc:
            log.error("the county refused the node's print agent: %s", exc)
        except Exception:
            log.exception("print agent stopped")

    def _loop(self) -> None:
        delay = RETRY_FIRST
        while not self._stop.is_set():
            try:
                printed_all = self.print_pending()
            except Exception:
                log.exception("printing offline receipts failed")
                printed_all = False
            if printed_all:
                delay = RETRY_FIRST
                # A sale made in another process (the gateway) queues without waking us.
                self._wake.wait(IDLE_POLL)
            else:
                self._wake.wait(delay)
                delay = min(delay * 2, RETRY_CAP)
            self._wake.clear()

    def _shop_language(self) -> contextlib.AbstractContextManager[Any]:
        """The app's default language (the shop's, not a browser's), as the county prints."""
        if self.app is None:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        stack.enter_context(self.app.app_context())
        stack.enter_context(force_locale(self.app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN")))
        return stack

    def print_pending(self, now: datetime | None = None) -> bool:
        """Print every queued receipt in order; False when the printer did not take one."""
        while True:
            with self._shop_language(), self.store.session() as session:
                item = session.scalar(
                    select(PrintQueueItem)
                    .where(PrintQueueItem.status == "queued")
                    .order_by(PrintQueueItem.id)
                    .limit(1)
                )
                if item is None:
                    return True
                lines = offline.receipt_lines(
                    session, item.sale_id, columns=PAPER[self.paper_mm][0]
                )
                item.status = "sending"
                item.attempts += 1
                item_id = item.id
            # Rendered outside the store's lock: every transaction on it takes SQLite's
            # write lock, and the counter's next sale must not wait for a raster.
            data, _mimetype = offline.render_receipt(
                lines, fmt="escpos", paper=self.paper_mm, mode=self.mode
            )
            assert isinstance(data, bytes)
            try:
                send_job(self.kind, self.conn, data, timeout=self.printer_timeout)
            except PrinterFault as exc:
                log.warning("offline receipt %s did not print: %s", item_id, exc)
                with self.store.session() as session:
                    stored = session.get(PrintQueueItem, item_id)
                    assert stored is not None
                    stored.status = "queued"
                    stored.error_code = exc.code
                    stored.last_error = str(exc)
                return False
            with self.store.session() as session:
                stored = session.get(PrintQueueItem, item_id)
                assert stored is not None
                stored.status = "printed"
                stored.error_code = None
                stored.printed_at = now or utcnow()

"""Printing's part in the app: it hears of new sales, wakes its worker on commit, starts it.

config.app's create_app calls `init_app`; nothing here runs at import, so importing a
printing module (the print agent, the CLI) changes nothing in the process.
"""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy.orm import Session

from core.db import db
from pos.models import Sale
from pos.signals import sale_recorded
from printing import wakeup, worker
from printing.services import queue_receipt


def init_app(app: Flask) -> None:
    # Per app: a second app in the process (the tests) queues by its own config.toml.
    sale_recorded.connect(_queue_receipt, sender=app)
    # The app's own sessions only, not every Session in the process.
    wakeup.listen(db.session)
    app.before_request(_start_print_worker)


def _queue_receipt(app: Flask, *, session: Session, sale: Sale) -> None:
    """A new sale's receipt as a job in the sale's transaction; nothing without a printer."""
    queue_receipt(
        session, sale, defaults=app.config.get("PRINTERS"), printers=worker.state(app).printers
    )


def _start_print_worker() -> None:
    # The worker starts with the first request a process serves, never in CLI commands.
    worker.ensure_worker(current_app._get_current_object())  # type: ignore[attr-defined]

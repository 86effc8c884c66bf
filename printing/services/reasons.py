"""Why a job did not print, in plain words: reason codes, guessed for old rows, and job views."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from printing.devices import (
    AGENT_OFFLINE,
    FAULT_CODES,
    INTERRUPTED,
    NO_FONT,
    OFFLINE,
    OTHER,
    PAPER_OUT,
    SETUP,
    TIMEOUT,
    UNREACHABLE,
)
from printing.models import PrintJob
from printing.services.settings import PrinterSettings

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

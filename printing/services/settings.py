"""Each shop's printer: its database row or config.toml table, checked, cached, set up."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from escpos.capabilities import get_profile_class
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import ValidationFailed
from inventory import services as inventory
from inventory.models import Shop
from pos.receipts.escpos import paper, parse_profile, printer_profile
from printing.devices import KINDS
from printing.models import Printer

# A host name or an IPv4/IPv6 address, nothing a socket would choke on.
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]_]{1,200}")
PAPER_SIZES = (58, 80)
MODES = ("text", "image")
# A shop's printer set-up is read by every sale; a few seconds' staleness costs nothing.
CACHE_SECONDS = 5.0
# The connection settings each kind takes (from the form, the API or config.toml), and those
# it cannot do without.
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
        errors["profile"] = [_l("a printer model name, at most 64 characters")]
    elif profile is not None and paper_mm in PAPER_SIZES:
        errors.update(_profile_errors(profile, paper_mm))
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


def _profile_errors(profile: str, paper_mm: int) -> dict[str, list[Any]]:
    # python-escpos says why in English; the county office reads what to do instead.
    try:
        # The model without the character set word ("TM-T88V gb18030"): pos.receipts.escpos.
        get_profile_class(parse_profile(profile)[0] or "default")
    except (KeyError, ValueError):
        return {
            "profile": [
                _l(
                    "no printer model %(name)s is known: leave it empty, or enter the model "
                    "from the printer's manual",
                    name=profile,
                )
            ]
        }
    try:
        printer_profile(profile, paper(paper_mm)[1])
    except ValueError:
        return {
            "profile": [
                _l(
                    "printer model %(name)s prints narrower than %(mm)s mm paper",
                    name=profile,
                    mm=paper_mm,
                )
            ]
        }
    return {}


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


def job_printer(
    session: Session, shop_id: int, shop_code: str, defaults: Mapping[str, Any] | None
) -> int | None:
    """The printer a new job goes to: its row id, 0 for config.toml's, None for none or off."""
    row = session.execute(
        select(Printer.id, Printer.enabled).where(Printer.shop_id == shop_id)
    ).first()
    if row is not None:
        return row.id if row.enabled else None
    entry = _config_entry(defaults, shop_code)
    return 0 if entry is not None and entry.get("enabled", True) else None


class PrinterCache:
    """`job_printer` per shop, remembered CACHE_SECONDS: every sale asks it.

    One per app (printing.worker.PrintingState holds it, the edges pass it in), so an app
    never answers from another app's database, and a fresh app starts empty.
    """

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._entries: dict[int, tuple[float, int | None]] = {}

    def job_printer(
        self, session: Session, shop_id: int, shop_code: str, defaults: Mapping[str, Any] | None
    ) -> int | None:
        now = time.monotonic()
        hit = self._entries.get(shop_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        printer = job_printer(session, shop_id, shop_code, defaults)
        self._entries[shop_id] = (now + self.seconds, printer)
        return printer

    def forget(self, shop_id: int) -> None:
        self._entries.pop(shop_id, None)


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
    printers: PrinterCache | None = None,
) -> PrinterSettings:
    """Set up the shop's printer (admin); the row replaces any config.toml default.

    `printers`, the app's cache, forgets the shop at once: its next sale prints here.
    """
    actor.require_admin(_l("only the county office may set up printers"))
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
    if printers is not None:
        printers.forget(shop.id)
    return _from_row(row, shop)


def remove_printer(
    session: Session, *, actor: User, shop_code: str, printers: PrinterCache | None = None
) -> None:
    """Forget the shop's printer row: its config.toml default (if any) applies again."""
    actor.require_admin(_l("only the county office may set up printers"))
    shop = inventory.get_shop(session, shop_code)
    row = session.scalar(select(Printer).where(Printer.shop_id == shop.id))
    if row is not None:
        session.delete(row)
        session.flush()
    if printers is not None:
        printers.forget(shop.id)

"""Receipt printers as python-escpos devices: specs, one-write jobs, DLE EOT status (no Flask)."""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from typing import Any

from escpos import printer as p
from escpos.exceptions import DeviceNotFoundError

# The print agent imports this module on a shop's PC: it must need neither Flask nor a database.

KINDS = ("network", "usb", "serial", "file", "cups", "lp", "win32")
DEFAULT_PORT = 9100
DEFAULT_TIMEOUT = 3.0

# DLE EOT n: real-time status, answered even while the printer is busy printing.
DLE_EOT_PRINTER = b"\x10\x04\x01"
DLE_EOT_PAPER = b"\x10\x04\x04"
_OFFLINE_BIT = 0x08
_PAPER_OUT_BITS = 0x60
_PAPER_NEAR_END_BITS = 0x0C


# Why a job did not print. A failed job's last_error starts with one ("paper_out: ..."), set
# where the exception is still at hand: the counter then says it in plain words without
# parsing English or OS text, and old rows without a code are guessed from their text.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
PAPER_OUT = "paper_out"
OFFLINE = "offline"
INTERRUPTED = "interrupted"
NO_FONT = "no_font"
SETUP = "setup"
AGENT_OFFLINE = "agent_offline"
OTHER = "other"
FAULT_CODES = (
    UNREACHABLE,
    TIMEOUT,
    PAPER_OUT,
    OFFLINE,
    INTERRUPTED,
    NO_FONT,
    SETUP,
    AGENT_OFFLINE,
    OTHER,
)


def fault_text(code: str, message: str) -> str:
    """A job's stored error: its code, then the technical text the county office reads."""
    return f"{code}: {message}"


class PrinterFault(Exception):
    """The printer could not take the job: off, unplugged, out of paper, hanging, cut off.

    Its text starts with its code, so whoever stores str(fault) (the worker, the agent's
    report) keeps the reason without knowing of codes.
    """

    def __init__(self, message: str, code: str = OTHER) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return fault_text(self.code, self.message)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    found: BaseException | None = exc
    while found is not None and found not in chain:
        chain.append(found)
        found = found.__cause__ or found.__context__
    return chain


def fault_code(exc: BaseException, default: str = OTHER) -> str:
    """The reason code of an exception from a printer library, by class, root cause first.

    python-escpos wraps the OSError it got (refused, not found, permission) in its own
    error; the OSError says more, so the chain is read from its far end.
    """
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, PrinterFault):
            return cause.code
    for cause in reversed(causes):
        name = type(cause).__name__.lower()
        if isinstance(cause, PermissionError):
            return SETUP
        if isinstance(cause, TimeoutError) or "timeout" in name:
            return TIMEOUT
        if isinstance(cause, (ConnectionRefusedError, FileNotFoundError, socket.gaierror)):
            return UNREACHABLE
        if isinstance(cause, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return INTERRUPTED
        if "notfound" in name:  # escpos DeviceNotFoundError, USBNotFoundError
            return UNREACHABLE
    return default


@dataclass(frozen=True)
class DeviceStatus:
    """What a printer says of itself. `state` is one of the STATES below."""

    state: str
    online: bool | None = None
    paper: str | None = None  # ok | near_end | out
    detail: str = ""


STATES = ("online", "offline", "paper_near_end", "paper_out", "unreachable", "unknown")


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 0)  # "0x0416" and "1046" alike


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`network:HOST[:PORT]`, `file:/dev/usb/lp0`, `usb:VID:PID[:IN:OUT]`, `serial:DEV[:BAUD]`,
    `win32:Printer Name`, `cups:Name`, `lp:Name` -> (kind, connection settings)."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS or not rest:
        raise ValueError(
            f"printer spec {spec!r}: use one of {', '.join(k + ':...' for k in KINDS)}"
        )
    if kind == "network":
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        return kind, {"host": host or rest, "port": int(port) if port else DEFAULT_PORT}
    if kind == "usb":
        parts = rest.split(":")
        if len(parts) not in (2, 4):
            raise ValueError("usb spec: usb:VENDOR:PRODUCT[:IN_EP:OUT_EP], e.g. usb:0x0416:0x5011")
        conn: dict[str, Any] = {"vendor_id": _int(parts[0]), "product_id": _int(parts[1])}
        if len(parts) == 4:
            conn.update(in_ep=_int(parts[2]), out_ep=_int(parts[3]))
        return kind, conn
    if kind == "serial":
        # A Windows port (COM3) has no colon; a baud rate may follow the device.
        dev, _, baud = rest.rpartition(":")
        if dev and baud.isdigit():
            return kind, {"devfile": dev, "baudrate": int(baud)}
        return kind, {"devfile": rest}
    if kind == "file":
        return kind, {"devfile": rest}
    return kind, {"printer_name": rest}


def make_printer(
    kind: str, conn: dict[str, Any], *, timeout: float = DEFAULT_TIMEOUT, profile: str | None = None
) -> Any:
    """The python-escpos printer class for a kind, not yet opened."""
    kwargs: dict[str, Any] = {"profile": profile} if profile else {}
    if kind == "network":
        return p.Network(
            conn["host"], port=int(conn.get("port") or DEFAULT_PORT), timeout=timeout, **kwargs
        )
    if kind == "usb":
        extra = {k: _int(conn[k]) for k in ("in_ep", "out_ep") if conn.get(k) not in (None, "")}
        return p.Usb(
            _int(conn["vendor_id"]),
            _int(conn["product_id"]),
            timeout=int(timeout * 1000),  # pyusb counts milliseconds
            **extra,
            **kwargs,
        )
    if kind == "serial":
        return p.Serial(
            conn["devfile"], baudrate=int(conn.get("baudrate") or 9600), timeout=timeout, **kwargs
        )
    if kind == "file":
        return p.File(conn["devfile"], **kwargs)
    if kind == "cups":
        return p.CupsPrinter(conn.get("printer_name") or "", **kwargs)
    if kind == "lp":
        return p.LP(conn.get("printer_name") or "", **kwargs)
    if kind == "win32":
        return p.Win32Raw(conn.get("printer_name") or "", **kwargs)
    raise PrinterFault(f"unknown printer kind {kind!r}", SETUP)


def _paper(byte: int) -> str:
    if byte & _PAPER_OUT_BITS:
        return "out"
    if byte & _PAPER_NEAR_END_BITS:
        return "near_end"
    return "ok"


def _read_status_byte(sock: socket.socket) -> int:
    data = sock.recv(1)
    if not data:
        raise PrinterFault("the printer closed the connection", INTERRUPTED)
    return data[0]


def send_job(
    kind: str,
    conn: dict[str, Any],
    data: bytes,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    confirm: bool | None = None,
) -> None:
    """Send a whole job in one write; raise PrinterFault if the printer did not take it.

    Network printers are asked for paper first (an empty printer would swallow the job),
    and after the job for their status: an answer proves the printer read everything
    before it, which a socket write alone does not (the kernel buffers a few KB).
    """
    if kind == "network":
        _send_network(conn, data, timeout=timeout, confirm=True if confirm is None else confirm)
        return
    try:
        device = make_printer(kind, conn, timeout=timeout)
        device.open()
    except PrinterFault:
        raise
    except Exception as exc:  # python-escpos raises its own, OSError, usb and serial errors
        raise PrinterFault(f"cannot open the printer: {exc}", fault_code(exc, UNREACHABLE)) from exc
    try:
        device._raw(data)
        if hasattr(device, "flush"):
            device.flush()
    except Exception as exc:
        raise PrinterFault(
            f"the printer stopped taking the job: {exc}", fault_code(exc, INTERRUPTED)
        ) from exc
    finally:
        # A failing close must not hide the job's outcome.
        with contextlib.suppress(Exception):
            device.close()


def _send_network(conn: dict[str, Any], data: bytes, *, timeout: float, confirm: bool) -> None:
    device = make_printer("network", conn, timeout=timeout)
    try:
        device.open()
    except DeviceNotFoundError as exc:
        reason = (getattr(exc, "msg", "") or str(exc)).strip().splitlines()[-1]
        # Refused, timed out or no route alike: the printer is off or not on the network.
        raise PrinterFault(f"cannot reach the printer: {reason}", UNREACHABLE) from exc
    sock = device.device
    try:
        if confirm:
            sock.sendall(DLE_EOT_PAPER)
            if _paper(_read_status_byte(sock)) == "out":
                raise PrinterFault("the printer is out of paper", PAPER_OUT)
        sock.sendall(data + (DLE_EOT_PRINTER if confirm else b""))
        if confirm:
            _read_status_byte(sock)
    except TimeoutError as exc:
        raise PrinterFault("the printer did not answer in time", TIMEOUT) from exc
    except OSError as exc:
        raise PrinterFault(f"the connection to the printer broke: {exc}", INTERRUPTED) from exc
    finally:
        device.close()


def query_status(kind: str, conn: dict[str, Any], *, timeout: float = 1.0) -> DeviceStatus:
    """Ask the printer how it is: DLE EOT 1 and 4 for network printers, a look elsewhere."""
    if kind == "network":
        return _network_status(conn, timeout=timeout)
    if kind == "file":
        path = conn.get("devfile") or ""
        if os.path.exists(path) and os.access(path, os.W_OK):
            return DeviceStatus("online", online=True)
        return DeviceStatus("unreachable", online=False, detail=f"{path} is not writable")
    return DeviceStatus("unknown")


def _network_status(conn: dict[str, Any], *, timeout: float) -> DeviceStatus:
    host, port = conn.get("host") or "", int(conn.get("port") or DEFAULT_PORT)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(DLE_EOT_PRINTER)
            printer = _read_status_byte(sock)
            sock.sendall(DLE_EOT_PAPER)
            paper = _paper(_read_status_byte(sock))
    except (TimeoutError, PrinterFault) as exc:
        reason = exc.message if isinstance(exc, PrinterFault) else exc
        return DeviceStatus("unreachable", online=False, detail=f"no status answer: {reason}")
    except OSError as exc:
        return DeviceStatus("unreachable", online=False, detail=str(exc))
    online = not printer & _OFFLINE_BIT
    if paper == "out":
        state = "paper_out"
    elif not online:
        state = "offline"
    elif paper == "near_end":
        state = "paper_near_end"
    else:
        state = "online"
    return DeviceStatus(state, online=online, paper=paper)

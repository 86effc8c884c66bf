"""A fake network receipt printer on a loopback port: records jobs, answers DLE EOT, misbehaves."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

DLE_EOT_PRINTER = b"\x10\x04\x01"
DLE_EOT_PAPER = b"\x10\x04\x04"
ONLINE = 0x12
OFFLINE = 0x1A  # bit 3: off line (cover open, error)
PAPER_OK = 0x12
PAPER_NEAR_END = 0x1E
PAPER_OUT = 0x72


@dataclass
class FakePrinter:
    """Behaviours: "ok" (prints, answers status), "refuse" (nothing listens), "hang" (accepts,
    never reads nor answers), "close" (reads `close_after` bytes of a job, then hangs up)."""

    behaviour: str = "ok"
    printer_status: int = ONLINE
    paper_status: int = PAPER_OK
    close_after: int = 10
    received: list[bytes] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listening = False
        self._thread: threading.Thread | None = None
        self.set(self.behaviour)

    # --- control -------------------------------------------------------------------------

    @property
    def spec(self) -> str:
        return f"network:127.0.0.1:{self.port}"

    @property
    def connection(self) -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port}

    def set(self, behaviour: str) -> None:
        """Change behaviour; "refuse" closes the listening socket so connects are refused."""
        self.behaviour = behaviour
        if behaviour == "refuse":
            self._close_listener()
        elif not self._listening:
            self._listen()

    def jobs(self) -> list[bytes]:
        with self._lock:
            return list(self.received)

    def wait_for_jobs(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.jobs()) >= count:
                return self.jobs()
            time.sleep(0.02)
        return self.jobs()

    def close(self) -> None:
        self._stop.set()
        self._close_listener()
        for conn in list(self._open):
            _quiet_close(conn)

    # --- the server ----------------------------------------------------------------------

    def _listen(self) -> None:
        if self._sock.fileno() == -1:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self._listening = True
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _close_listener(self) -> None:
        self._listening = False
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        _quiet_close(self._sock)

    def _accept_loop(self) -> None:
        sock = self._sock
        while self._listening and not self._stop.is_set():
            try:
                conn, _addr = sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        behaviour = self.behaviour
        if behaviour == "hang":
            # Accepts and then neither reads nor answers, like a jammed printer.
            while not self._stop.is_set() and self.behaviour == "hang":
                time.sleep(0.05)
            _quiet_close(conn)
            return
        conn.settimeout(0.1)
        job = bytearray()
        seen = 0
        try:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                job += chunk
                if behaviour == "close" and len(job) - seen > self.close_after + 3:
                    # Hang up in the middle of the job: nothing is printed.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    _quiet_close(conn)
                    return
                seen = self._answer(conn, job, seen)
        except OSError:
            pass
        finally:
            _quiet_close(conn)
        self._record(bytes(job))

    def _answer(self, conn: socket.socket, job: bytearray, seen: int) -> int:
        """Answer each status query once, in order, wherever it appears in the stream."""
        while True:
            found = [
                (pos, query)
                for query in (DLE_EOT_PRINTER, DLE_EOT_PAPER)
                if (pos := job.find(query, seen)) != -1
            ]
            if not found:
                return seen
            pos, query = min(found)
            reply = self.printer_status if query == DLE_EOT_PRINTER else self.paper_status
            conn.sendall(bytes([reply]))
            seen = pos + len(query)

    def _record(self, stream: bytes) -> None:
        # What is printed: the stream less the status queries.
        body = stream.replace(DLE_EOT_PRINTER, b"").replace(DLE_EOT_PAPER, b"")
        if body:
            with self._lock:
                self.received.append(body)


def _quiet_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()

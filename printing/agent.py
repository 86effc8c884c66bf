"""The shop's print agent: fetches its shop's print jobs from the server and prints them locally."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from printing.devices import PrinterFault, parse_spec, query_status, send_job

# Each platform has its own lock on a file; the other's module does not exist there.
if os.name == "nt":
    import msvcrt
else:
    import fcntl

# Runs on the shop's counter PC (Linux or Windows): the standard library and python-escpos
# only; no Flask app, no database.

log = logging.getLogger("integrity_pos.print_agent")

USER_AGENT = "integrity-pos-print-agent/1"
# Printed ids the journal keeps after compaction; far more than one shop prints in weeks.
JOURNAL_KEEP = 5000


class ServerUnreachable(Exception):
    """The network or the server is down; try again after a pause."""


class AgentRefused(Exception):
    """The server refuses this agent (bad or expired token, wrong role): retrying cannot help."""


def default_state_dir(name: str = "print-agent") -> Path:
    """A per-user folder that survives reboots, for the agent (or the shop node)."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "integrity-pos" / name


class Journal:
    """Which jobs this agent printed and which of those the server acknowledged.

    A job id is written (and fsynced) after the printer took the job and before the ack
    is sent, so after a crash at any point the agent knows not to print it again, and
    acknowledges it first thing on start.
    """

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "printed-jobs.log"
        self.printed: dict[int, str] = {}
        self.acked: set[int] = set()
        self._lines = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="ascii", errors="replace").splitlines():
                self._apply(line)
        self._file: IO[str] = self.path.open("a", encoding="ascii")

    def _apply(self, line: str) -> None:
        parts = line.split()
        # A torn last line (a crash mid-write) is ignored: its fsync never finished.
        if len(parts) == 3 and parts[0] == "printed" and parts[1].isdigit():
            self.printed[int(parts[1])] = parts[2]
            self._lines += 1
        elif len(parts) == 2 and parts[0] == "acked" and parts[1].isdigit():
            self.acked.add(int(parts[1]))
            self._lines += 1

    def _append(self, line: str) -> None:
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._lines += 1

    def record_printed(self, job_id: int, lease: str) -> None:
        self._append(f"printed {job_id} {lease}")
        self.printed[job_id] = lease

    def record_acked(self, job_id: int) -> None:
        self._append(f"acked {job_id}")
        self.acked.add(job_id)
        if self._lines > 4 * JOURNAL_KEEP:
            self._compact()

    def was_printed(self, job_id: int) -> bool:
        return job_id in self.printed

    def unacked(self) -> list[tuple[int, str]]:
        return sorted((i, lease) for i, lease in self.printed.items() if i not in self.acked)

    def _compact(self) -> None:
        keep = sorted(self.printed)[-JOURNAL_KEEP:]
        lines = []
        for job_id in keep:
            lines.append(f"printed {job_id} {self.printed[job_id]}")
            if job_id in self.acked:
                lines.append(f"acked {job_id}")
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="ascii") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._file.close()
        os.replace(tmp, self.path)
        self.printed = {i: self.printed[i] for i in keep}
        self.acked &= set(keep)
        self._lines = len(lines)
        self._file = self.path.open("a", encoding="ascii")

    def close(self) -> None:
        self._file.close()


class SingleInstance:
    """One agent per state directory: two would share a journal and could print twice."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._fh = (state_dir / "agent.lock").open("a+b")
        try:
            if os.name == "nt":
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._fh.close()
            raise SystemExit(f"another print agent is running with {state_dir}") from exc

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()


@dataclass
class Backoff:
    """Exponential pauses with jitter after network errors, capped; reset by a success."""

    first: float = 1.0
    cap: float = 60.0
    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.first * 2 ** (self.failures - 1))
        # Full jitter between half and all of it: 13 shops' agents do not return in step.
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class Agent:
    """Long-poll the server for the shop's jobs, print each, journal it, acknowledge it."""

    def __init__(
        self,
        *,
        server: str,
        token: str,
        state_dir: Path,
        printer: str | None = None,
        shop: str | None = None,
        wait: int = 25,
        printer_timeout: float = 5.0,
        backoff: Backoff | None = None,
        hook: Callable[[str, int], None] | None = None,
        http_slack: float = 15.0,
        status_every: float = 10.0,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.state_dir = Path(state_dir)
        self.printer_spec = printer
        self.shop = shop
        self.wait = wait
        self.printer_timeout = printer_timeout
        # How much longer than the long poll's wait an answer may take before we give up.
        self.http_slack = http_slack
        self.backoff = backoff or Backoff()
        # Tests crash the agent at named points through this: "leased", "printed", "acked".
        self.hook = hook or (lambda _event, _job_id: None)
        self.printer: tuple[str, dict[str, Any]] | None = parse_spec(printer) if printer else None
        self.journal: Journal | None = None
        self.printed_count = 0
        # The printer's state goes with each poll, so the counter shows paper and power
        # for a printer only the agent can reach; asked at most every `status_every` s.
        self.status_every = status_every
        self._status: tuple[float, str] | None = None

    # --- HTTP --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.http_slack) as response:
                status, raw, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            status, raw, headers = exc.code, exc.read(), exc.headers
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise ServerUnreachable(str(exc)) from exc
        if status in (401, 403):
            raise AgentRefused(_detail(raw) or f"HTTP {status}")
        if status >= 500 or status == 429:
            raise ServerUnreachable(f"HTTP {status}: {_detail(raw)}")
        payload = None
        if raw:
            try:
                payload = json.loads(raw)
            except ValueError as exc:
                raise ServerUnreachable(f"not JSON from the server (HTTP {status})") from exc
        return status, payload, headers

    # --- the loop ----------------------------------------------------------------------

    def identify(self) -> None:
        """Which shop this token prints for, and its printer if none was given locally."""
        _status, body, _headers = self._call("GET", "/api/v1/print-agent")
        self.shop = self.shop or body["shop_code"]
        if self.printer is None:
            printer = body.get("printer")
            if not printer:
                raise AgentRefused("no --printer given and the server has none set up for the shop")
            self.printer = (printer["kind"], printer["connection"])

    def run(self, stop: threading.Event | None = None) -> None:
        """Work until `stop` is set (or forever); network faults only pause it."""
        stop = stop or threading.Event()
        lock = SingleInstance(self.state_dir)
        self.journal = Journal(self.state_dir)
        try:
            while not stop.is_set():
                try:
                    if self.shop is None or self.printer is None:
                        self.identify()
                    self._ack_journaled()
                    self._one_turn(stop)
                    self.backoff.reset()
                except ServerUnreachable as exc:
                    delay = self.backoff.next_delay()
                    log.warning("server unreachable (%s); trying again in %.1f s", exc, delay)
                    stop.wait(delay)
        finally:
            self.journal.close()
            lock.release()

    def _ack_journaled(self) -> None:
        assert self.journal is not None
        for job_id, lease in self.journal.unacked():
            self._ack(job_id, lease)

    def _ack(self, job_id: int, lease: str) -> None:
        assert self.journal is not None
        status, body, _ = self._call("POST", f"/api/v1/print-jobs/{job_id}/ack", {"lease": lease})
        if status not in (200, 404, 409):
            raise ServerUnreachable(f"ack of job {job_id}: HTTP {status}")
        if status != 200:
            # Gone or held by another lease: nothing more this agent can say about it.
            log.warning("job %s: ack answered %s: %s", job_id, status, (body or {}).get("detail"))
        self.journal.record_acked(job_id)
        self.hook("acked", job_id)

    def printer_state(self) -> str:
        """The local printer's state (DLE EOT where it answers), asked again when stale."""
        assert self.printer is not None
        now = time.monotonic()
        if self._status is None or now - self._status[0] >= self.status_every:
            kind, conn = self.printer
            found = query_status(kind, conn, timeout=min(self.printer_timeout, 2.0))
            self._status = (now, found.state)
        return self._status[1]

    def _one_turn(self, stop: threading.Event) -> None:
        assert self.journal is not None and self.printer is not None
        path = f"/api/v1/shops/{urllib.parse.quote(self.shop or '')}/print-jobs/next"
        query = urllib.parse.urlencode({"wait": self.wait, "printer": self.printer_state()})
        status, job, headers = self._call(
            "GET", f"{path}?{query}", timeout=self.wait + self.http_slack
        )
        if status == 204 or not job:
            retry_after = headers.get("Retry-After") if headers else None
            if retry_after and retry_after.isdigit():
                stop.wait(float(retry_after))
            return
        if status != 200:
            raise ServerUnreachable(f"next job: HTTP {status}")
        job_id, lease = int(job["id"]), str(job["lease"])
        self.hook("leased", job_id)
        if self.journal.was_printed(job_id):
            # Printed before a crash, its ack lost: acknowledge, never print it again.
            self._ack(job_id, lease)
            return
        kind, conn = self.printer
        try:
            send_job(kind, conn, base64.b64decode(job["data"]), timeout=self.printer_timeout)
        except PrinterFault as exc:
            log.warning("job %s did not print: %s", job_id, exc)
            self._status = None  # the next poll tells the counter why
            self._call(
                "POST", f"/api/v1/print-jobs/{job_id}/fail", {"lease": lease, "error": str(exc)}
            )
            return
        self.journal.record_printed(job_id, lease)
        self.printed_count += 1
        self.hook("printed", job_id)
        self._ack(job_id, lease)


def _detail(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    return str(body.get("detail") or body.get("title") or "") if isinstance(body, dict) else ""


def main(
    *,
    server: str,
    token: str,
    printer: str | None,
    shop: str | None,
    state_dir: Path,
    wait: int,
    printer_timeout: float,
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    agent = Agent(
        server=server,
        token=token,
        printer=printer,
        shop=shop,
        state_dir=state_dir,
        wait=wait,
        printer_timeout=printer_timeout,
    )
    try:
        agent.run()
    except AgentRefused as exc:
        print(f"Error: the server refused this agent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0

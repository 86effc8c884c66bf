"""Real processes for the end-to-end tests: the county server, the CLI, and shop nodes."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from bench.harness import free_port

ROOT = Path(__file__).resolve().parents[3]
CLI = Path(sys.executable).parent / "integrity-pos"
PASSWORD = "e2e-pass-2026"
# Long enough for a sync round or two (the syncer's interval is a few seconds), short
# enough that a hung test fails in well under a minute.
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.1
# The node honours this for tests: its clock runs this many seconds off the real one.
NODE_CLOCK_SKEW_ENV = "INTEGRITY_POS_NODE_CLOCK_SKEW_SECONDS"

T = TypeVar("T")

_STAFF_SCRIPT = """
import json, sys
from datetime import timedelta
from accounts.auth import Role, create_user
from config.app import create_app
from core.db import db, utcnow
from nodes.services import register_node

password, shops = sys.argv[1], sys.argv[2:]
app = create_app()
tokens = {}
with app.app_context():
    for shop in shops:
        name = shop.lower()
        create_user(
            db.session, username=f"clerk-{name}", password=password, role=Role.CLERK,
            shop_code=shop,
        )
        _node, tokens[shop] = register_node(
            db.session, now=utcnow(), shop_code=shop, username=f"node-{name}",
            token_ttl=timedelta(days=2),
        )
    db.session.commit()
print(json.dumps(tokens))
"""
_keys = itertools.count(1)


def new_key(prefix: str = "e2e") -> str:
    return f"{prefix}-{os.getpid()}-{next(_keys)}-{time.monotonic_ns()}"


def wait_until(
    check: Callable[[], T | bool | None],
    *,
    what: str,
    timeout: float = WAIT_SECONDS,
    interval: float = POLL_SECONDS,
) -> T:
    """Poll `check` until it returns something truthy; that value. Fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {last!r}")
        time.sleep(interval)


def _child_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "INTEGRITY_POS_HOME": str(home),
            # The children run this checkout's code, even packages added since the install.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            "INTEGRITY_POS_LOGIN_RATE_LIMIT": "100000 per minute",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


class Api:
    """JSON over HTTP to one base URL, with a bearer token."""

    def __init__(self, base: str, token: str | None = None, *, timeout: float = 15) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.http = requests.Session()

    def with_token(self, token: str) -> Api:
        return Api(self.base, token, timeout=self.timeout)

    def call(self, method: str, path: str, json: Any = None, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.request(
            method,
            self.base + path,
            json=json,
            headers=headers,
            timeout=kw.pop("timeout", self.timeout),
            **kw,
        )

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.call("POST", path, json=json, **kw)

    def ok(self, method: str, path: str, json: Any = None, status: int | None = None) -> Any:
        """The JSON body of a call that must succeed (or answer `status`)."""
        response = self.call(method, path, json=json)
        expected = (status,) if status else (200, 201)
        assert response.status_code in expected, (
            f"{method} {path} -> {response.status_code}: {response.text[:500]}"
        )
        return response.json()


@dataclass
class County:
    """The county server on a database of its own, served on a free port."""

    backend: str
    home: Path
    database_url: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    admin: Api | None = None
    log: Path | None = None
    # (world number, node token) of worlds whose shops, clerk and node are made already.
    prepared: list[tuple[int, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return _child_env(self.home, {"DATABASE_URL": self.database_url})

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(CLI), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"integrity-pos {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def cli_together(self, *commands: tuple[str, ...]) -> list[str]:
        """Several commands at once (each boots the app for a second or two); their stdouts."""
        running = [
            subprocess.Popen(
                [str(CLI), *args],
                env=self.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in commands
        ]
        outputs = []
        for args, process in zip(commands, running, strict=True):
            out, err = process.communicate(timeout=120)
            if process.returncode != 0:
                raise AssertionError(
                    f"integrity-pos {' '.join(args)} -> {process.returncode}\n{out}\n{err}"
                )
            outputs.append(out)
        return outputs

    def make_staff(self, shops: list[str]) -> dict[str, str]:
        """Each shop's clerk and registered node, in one process; each node's token.

        What `create-user` and `register-node` do, through the same services, for many
        shops at once: each command boots the app for a second or two, which the scenarios
        would pay twice each (the commands themselves are tested in tests/nodes/test_cli.py).
        """
        done = subprocess.run(
            [sys.executable, "-c", _STAFF_SCRIPT, PASSWORD, *shops],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"making the shops' staff failed:\n{done.stdout}\n{done.stderr}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def start(self) -> County:
        self.home.mkdir(parents=True, exist_ok=True)
        self.cli("init-db")
        self.cli("create-user", "e2e-admin", "--role", "admin", "--password", PASSWORD)
        self.port = free_port()
        self.log = self.home / "server.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(CLI), "serve", "--port", str(self.port), "--workers", "1", "--threads", "8"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # An HTTP answer, not a TCP connect (the kernel accepts before the app is built).
        wait_until(
            lambda: requests.get(self.url + "/api/v1/node", timeout=2).status_code == 401,
            what="the county server to answer",
            timeout=60,
        )
        self.admin = Api(self.url, self.token_for("e2e-admin"))
        return self

    def token_for(self, username: str) -> str:
        body = Api(self.url).ok(
            "POST", "/api/v1/auth/token", {"username": username, "password": PASSWORD}
        )
        return str(body["token"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # gunicorn's quick shutdown: no graceful wait for idle keep-alive connections.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Node:
    """An `integrity-pos shop-node` subprocess on a state directory that outlives it."""

    server_url: str
    token: str
    shop_code: str
    state_dir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.state_dir.parent / f"node-{self.shop_code}.log"

    def api(self, token: str | None = None) -> Api:
        return Api(self.url, token)

    def start(self) -> Node:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n==== start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    str(CLI),
                    "shop-node",
                    "--server",
                    self.server_url,
                    "--token",
                    self.token,
                    "--shop",
                    self.shop_code,
                    "--state-dir",
                    str(self.state_dir),
                    "--port",
                    str(self.port),
                    # Receipts print to a file: the node drives its shop's printer.
                    "--printer",
                    f"file:{self.state_dir.parent / f'receipts-{self.shop_code}.bin'}",
                ],
                env=_child_env(self.state_dir.parent / "node-home", self.extra_env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._answers, what="the shop node to answer /node/status", timeout=45)
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the node exited ({self.process.returncode}):\n{self.tail()}")
        return requests.get(self.url + "/node/status", timeout=2).status_code == 200

    def status(self) -> dict[str, Any]:
        response = requests.get(self.url + "/node/status", timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(self, what: str, check: Callable[[dict[str, Any]], bool], **kw: Any) -> dict:
        seen: list[dict[str, Any]] = []

        def probe() -> dict[str, Any] | None:
            status = self.status()
            seen[:] = [status]
            return status if check(status) else None

        try:
            return wait_until(probe, what=f"node status: {what}", **kw)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last status {seen}\n{self.tail()}") from None

    def wait_synced(self, **kw: Any) -> dict[str, Any]:
        """Online, a sync behind it, nothing waiting in the outbox."""
        return self.wait_status(
            "online and drained",
            lambda s: s["online"] and s["last_sync_at"] and s["pending_sales"] == 0,
            **kw,
        )

    def wait_sync_after(self, moment: str, **kw: Any) -> dict[str, Any]:
        """A sync that finished after `moment` (an ISO time from the county)."""
        from datetime import datetime

        since = datetime.fromisoformat(moment)
        return self.wait_status(
            f"a sync after {moment}",
            lambda s: bool(s["last_sync_at"]) and datetime.fromisoformat(s["last_sync_at"]) > since,
            **kw,
        )

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

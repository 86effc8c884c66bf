"""Faults at the counter: a full or read-only disk, a killed server, a restarted PostgreSQL.

Each test sells with retries the way the counter page does (the same key until an answer
comes) and then checks that nothing was lost, nothing was charged twice, and the ledger
verifies.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from core.db import db
from ledger.services import verify_ledger
from pos.models import Sale
from tests.conftest import PG_URL, database_url_for_threads
from tests.pos.conftest import Counter, balance, on_hand, sale_body

ROOT = Path(__file__).resolve().parents[2]


# --- the disk ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def _limit_writes(pragma: str) -> Any:
    """Every new connection gets the pragma; the pool is emptied so none escapes it."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(pragma)

    db.session.rollback()
    db.engine.dispose()
    event.listen(db.engine, "connect", on_connect)
    return on_connect


def _lift(listener: Any) -> None:
    db.session.rollback()
    event.remove(db.engine, "connect", listener)
    db.engine.dispose()


@pytest.mark.parametrize(
    "pragma",
    [
        # A database that may not grow by a page: what a full disk looks like to SQLite.
        "PRAGMA max_page_count = 1",
        # Writes refused: what a read-only file or a remounted disk looks like.
        "PRAGMA query_only = ON",
    ],
    ids=["disk-full", "read-only"],
)
def test_a_disk_that_takes_no_writes_refuses_the_sale_clearly_and_keeps_the_books(
    client: Any, counter: Counter, pragma: str
) -> None:
    page_count = db.session.execute(text("PRAGMA page_count")).scalar()
    pragma = pragma.replace("= 1", f"= {page_count}")
    before = balance(counter.household), on_hand(counter.shop, counter.soap)
    body = sale_body(counter, {"sku": "SOAP", "qty": 1}, key="disk-1")
    headers = counter.clerk_headers
    listener = _limit_writes(pragma)
    try:
        refused = []
        # Enough sales to need new pages, whatever room the last page had.
        for n in range(55):
            response = client.post(
                "/api/v1/shops/GJY/sales",
                json=dict(body, idempotency_key=f"disk-{n}"),
                headers=headers,
            )
            assert response.status_code in (201, 503), response.get_json()
            if response.status_code == 503:
                refused.append(response)
                break
        assert refused, "the limited database kept taking writes"
        problem = refused[0]
        assert problem.mimetype == "application/problem+json"
        assert problem.get_json()["code"] == "unavailable"
        assert (
            "county office" in problem.get_json()["detail"]
            or "县" in (problem.get_json()["detail"])
        )
        sold_before_full = n
    finally:
        _lift(listener)
    assert balance(counter.household) == before[0] - 5 * sold_before_full
    assert on_hand(counter.shop, counter.soap) == before[1] - sold_before_full
    # The refused key was not consumed: once the disk has room, it sells exactly once.
    again = client.post(
        "/api/v1/shops/GJY/sales",
        json=dict(body, idempotency_key=f"disk-{sold_before_full}"),
        headers=counter.clerk_headers,
    )
    assert again.status_code == 201
    assert db.session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    assert verify_ledger(db.session).ok
    db.session.rollback()


# --- a killed server --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(port: int, database_url: str, home: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        INTEGRITY_POS_HOME=str(home),
        DATABASE_URL=database_url,
        INTEGRITY_POS_SECRET_KEY="test-secret",
        INTEGRITY_POS_CARD_SIGNING_KEY="test-card-key",
    )
    command = [str(Path(sys.executable).parent / "integrity-pos"), "serve", "--port", str(port)]
    # A session of its own: the kill below takes the server and all its workers at once.
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise AssertionError("the server did not start")


def _sell_with_retries(port: int, headers: dict, bodies: list[dict], out: dict) -> None:
    """The counter's loop: one key per sale, retried until the server answers it."""
    for body in bodies:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "a sale found no server for a minute"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request(
                    "POST",
                    "/api/v1/shops/GJY/sales",
                    body=json.dumps(body),
                    headers={**headers, "Content-Type": "application/json"},
                )
                response = conn.getresponse()
                data = json.loads(response.read() or b"{}")
                conn.close()
            except (OSError, http.client.HTTPException, ValueError):
                out["retries"] = out.get("retries", 0) + 1
                time.sleep(0.05)
                continue
            if response.status == 503:
                out["retries"] = out.get("retries", 0) + 1
                time.sleep(0.05)
                continue
            out[body["idempotency_key"]] = (response.status, data)
            break


def test_a_server_killed_mid_sale_loses_nothing_and_charges_nothing_twice(
    counter: Counter, tmp_path: Path, app: Any
) -> None:
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs POSIX signals")
    url = database_url_for_threads(app)
    start_balance = balance(counter.household)
    port = _free_port()
    bodies = [
        [sale_body(counter, {"sku": "SOAP", "qty": 1}, key=f"kill-{t}-{n}") for n in range(15)]
        for t in range(3)
    ]
    out: dict[str, Any] = {}
    db.session.rollback()
    server = _start_server(port, url, tmp_path)
    threads = [
        threading.Thread(target=_sell_with_retries, args=(port, counter.clerk_headers, b, out))
        for b in bodies
    ]
    kills = 0
    try:
        for thread in threads:
            thread.start()
        for _ in range(2):
            while len(out) < 12 * (kills + 1) + 1 and any(t.is_alive() for t in threads):
                time.sleep(0.01)
            # No goodbye: mid-request, mid-transaction, every worker at once.
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            kills += 1
            server = _start_server(port, url, tmp_path)
        for thread in threads:
            thread.join(timeout=120)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    assert kills == 2
    assert out.pop("retries", 0) >= 1, "no request saw the server die"
    assert len(out) == 45
    assert all(status == 201 for status, _data in out.values()), out
    # Every key sold exactly once, and the points left exactly once per sale.
    assert len({data["sale_id"] for _status, data in out.values()}) == 45
    assert db.session.scalar(select(func.count(Sale.id))) == 45
    db.session.rollback()
    assert balance(counter.household) == start_balance - 5 * 45
    assert verify_ledger(db.session).ok
    db.session.rollback()


# --- PostgreSQL restarted ---------------------------------------------------------------


def _pg_cluster() -> list[str] | None:
    if not shutil.which("pg_ctlcluster") or os.geteuid() != 0:
        return None
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    return [versions[-1], "main"] if versions else None


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL not set")
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_restarted_under_load_loses_nothing(
    counter: Counter, live_server: str, app: Any
) -> None:
    cluster = _pg_cluster()
    if cluster is None or not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("needs a local PostgreSQL cluster this test may restart (root, CI)")
    start_balance = balance(counter.household)
    port = int(live_server.rsplit(":", 1)[1])
    bodies = [
        [sale_body(counter, {"sku": "SOAP", "qty": 1}, key=f"pg-{t}-{n}") for n in range(15)]
        for t in range(3)
    ]
    out: dict[str, Any] = {}
    threads = [
        threading.Thread(target=_sell_with_retries, args=(port, counter.clerk_headers, b, out))
        for b in bodies
    ]
    try:
        for thread in threads:
            thread.start()
        while len(out) < 10:
            time.sleep(0.01)
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart", "-m", "fast"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for thread in threads:
            thread.join(timeout=120)
    finally:
        # Whatever happened, leave PostgreSQL running for the rest of the suite, and drop
        # this process's connections to the old server.
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "start"],
            capture_output=True,
            timeout=60,
        )
        db.session().invalidate()
        db.engine.dispose()
    assert out.pop("retries", 0) >= 1, "no request saw PostgreSQL go away"
    assert len(out) == 45
    assert all(status == 201 for status, _data in out.values()), out
    assert len({data["sale_id"] for _status, data in out.values()}) == 45
    assert db.session.scalar(select(func.count(Sale.id))) == 45
    assert balance(counter.household) == start_balance - 5 * 45
    assert verify_ledger(db.session).ok
    db.session.rollback()

"""`integrity-pos serve`: gunicorn workers on Linux sharing one port, waitress without fork."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from config import serving
from config.cli import main

ROOT = Path(__file__).resolve().parents[2]
real_server = pytest.mark.skipif(
    not serving.gunicorn_available() or not Path("/proc/self/task").exists(),
    reason="gunicorn's workers, watched through /proc (Linux)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _wait_until(check: Callable[[], bool], seconds: float = 30) -> None:
    # Polling /proc and the port: neither can tell us when they change.
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def ready(self, workers: int) -> list[int]:
        """The worker pids, once that many are up and the port answers."""
        _wait_until(lambda: len(_children(self.process.pid)) == workers and _answers(self.port))
        return _children(self.process.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "INTEGRITY_POS_HOME": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'integrity.db'}",
            "INTEGRITY_POS_SECRET_KEY": "test-secret",
            "INTEGRITY_POS_CARD_SIGNING_KEY": "test-card-key",
        }
    )
    command = "from config.cli import main; main()"
    args = ["serve", "--port", str(port), "--workers", "2", "--threads", "2"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", command, *args], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        yield Server(process, port, log)
    finally:
        workers = _children(process.pid)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for pid in workers:  # a worker stopped by a test must not outlive it
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


@real_server
def test_each_of_two_workers_answers_and_sigterm_stops_them_all(server):
    workers = server.ready(2)
    for answering in workers:
        # Only one worker runs, so that one must have accepted the connection.
        others = [pid for pid in workers if pid != answering]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            assert _answers(server.port)
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert all(_gone(pid) for pid in workers)
    assert not _answers(server.port)
    assert "(2 x 2 threads)" in server.output()


@real_server
def test_a_worker_that_dies_is_replaced(server):
    first, second = server.ready(2)
    os.kill(first, signal.SIGKILL)
    _wait_until(lambda: first not in _children(server.process.pid))
    replaced = server.ready(2)
    assert second in replaced and first not in replaced
    assert server.process.poll() is None


@real_server
def test_workers_do_not_outlive_a_parent_killed_outright(server):
    workers = server.ready(2)
    server.process.kill()
    server.process.wait(timeout=10)
    _wait_until(lambda: all(_gone(pid) for pid in workers))
    assert not _answers(server.port)


def test_serve_refuses_a_database_it_does_not_run_on(tmp_path, monkeypatch):
    monkeypatch.setenv("INTEGRITY_POS_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "mysql://pos@db/pos")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert "SQLite" in result.output and "PostgreSQL" in result.output
    assert "Serving on" not in result.output and not isinstance(result.exception, ValueError)


def test_our_flags_become_gunicorn_settings():
    options = serving.gunicorn_options(host="0.0.0.0", port=8080, threads=8, workers=2)
    assert options["bind"] == ["0.0.0.0:8080"]
    assert (options["workers"], options["threads"]) == (2, 8)
    assert options["worker_class"] == "gthread"
    assert serving.gunicorn_options(host="::", port=80, threads=1, workers=1)["bind"] == ["[::]:80"]


@pytest.mark.skipif(not serving.gunicorn_available(), reason="needs gunicorn")
def test_every_setting_we_give_gunicorn_is_one_it_knows():
    from gunicorn.config import Config

    options = serving.gunicorn_options(host="127.0.0.1", port=5000, threads=8, workers=2)
    assert set(options) <= set(Config().settings)


def test_the_first_workers_wait_for_each_other_and_a_replacement_for_no_one():
    wait = serving.start_together(2)
    started = time.monotonic()
    wait(SimpleNamespace(age=3))
    # Waiting, it would have stopped START_TOGETHER_SECONDS and broken the barrier.
    assert time.monotonic() - started < serving.START_TOGETHER_SECONDS / 2
    first = threading.Thread(target=wait, args=(SimpleNamespace(age=1),))
    first.start()
    wait(SimpleNamespace(age=2))
    first.join(timeout=10)
    assert not first.is_alive()


def test_default_workers_is_one_per_core_up_to_two_and_one_without_gunicorn(monkeypatch):
    assert 1 <= serving.default_workers() <= 2
    monkeypatch.setattr(serving, "gunicorn_available", lambda: False)
    assert serving.default_workers() == 1


def test_without_gunicorn_waitress_serves_in_process(monkeypatch):
    served: dict[str, Any] = {}

    def fake_serve(app: object, **kw: object) -> None:
        served.update(kw, app=app)

    import waitress

    monkeypatch.setattr(serving, "gunicorn_available", lambda: False)
    monkeypatch.setattr(waitress, "serve", fake_serve)
    status = serving.serve(lambda: "app", host="127.0.0.1", port=5000, threads=3, workers=2)
    assert status == 0
    assert served == {
        "app": "app",
        "host": "127.0.0.1",
        "port": 5000,
        "threads": 3,
        "ident": "integrity-pos",
    }

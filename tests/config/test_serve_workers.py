"""`integrity-pos serve --workers N`: one socket, N forked workers, a parent that stops them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import serving

ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked (POSIX)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _wait_until(check: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
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
    process = subprocess.Popen(
        [sys.executable, "-c", command, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@posix_only
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_two_workers_share_the_port_and_stop_with_the_parent(server):
    process, port = server
    _wait_until(lambda: _answers(port))
    workers = _children(process.pid)
    assert len(workers) == 2
    for _ in range(10):
        assert _answers(port)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)
    assert b"2 x 2 threads" in (process.stdout.read() if process.stdout else b"")


@posix_only
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_a_worker_that_dies_takes_the_server_down_for_its_supervisor(server):
    process, port = server
    _wait_until(lambda: _answers(port))
    first, second = _children(process.pid)
    os.kill(first, signal.SIGKILL)
    assert process.wait(timeout=30) == 1
    _wait_until(lambda: not Path(f"/proc/{second}").exists() or "Z" in _state(second))


@posix_only
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_workers_do_not_outlive_a_parent_killed_outright(server):
    process, port = server
    _wait_until(lambda: _answers(port))
    workers = _children(process.pid)
    process.kill()
    process.wait(timeout=10)
    _wait_until(
        lambda: all(not Path(f"/proc/{pid}").exists() or "Z" in _state(pid) for pid in workers)
    )
    assert not _answers(port)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def test_default_workers_is_one_per_core_up_to_two_and_one_without_fork(monkeypatch):
    assert 1 <= serving.default_workers() <= 2
    monkeypatch.delattr(os, "fork")
    assert serving.default_workers() == 1


def test_one_worker_serves_in_process(monkeypatch):
    served = {}

    def fake_serve(app: object, **kw: object) -> None:
        served.update(kw, app=app)

    import waitress

    monkeypatch.setattr(waitress, "serve", fake_serve)
    status = serving.serve(lambda: "app", host="127.0.0.1", port=5000, threads=3, workers=1)
    assert status == 0
    assert served == {
        "app": "app",
        "host": "127.0.0.1",
        "port": 5000,
        "threads": 3,
        "ident": "integrity-pos",
    }

"""The cuttable line itself: forwarding, cut (refused or reset), blackhole, restore, counts."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.nodes.e2e.proxy import TcpProxy


@pytest.fixture
def echo() -> Iterator[int]:
    """An upstream that answers each line with the line upper-cased."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy resets it when cut
            while data := conn.recv(4096):
                conn.sendall(data.upper())

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def _ask(port: int, data: bytes = b"hello", timeout: float = 2) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return sock.recv(4096)


def test_forwards_and_counts_bytes(echo: int) -> None:
    with TcpProxy(echo) as proxy:
        assert _ask(proxy.port) == b"HELLO"
        assert _ask(proxy.port, b"abc") == b"ABC"
        assert proxy.bytes_up == 8
        assert proxy.bytes_down == 8


def test_cut_resets_live_connections_and_refuses_new_ones(echo: int) -> None:
    with TcpProxy(echo) as proxy:
        live = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        live.sendall(b"x")
        assert live.recv(10) == b"X"
        proxy.cut()
        with pytest.raises(OSError):
            live.sendall(b"y")
            if not live.recv(10):  # an orderly close would be a lie: the line dropped
                raise ConnectionResetError
        live.close()
        with pytest.raises(ConnectionRefusedError):
            _ask(proxy.port)
        proxy.restore()
        assert _ask(proxy.port) == b"HELLO"


def test_blackhole_accepts_but_never_answers(echo: int) -> None:
    with TcpProxy(echo) as proxy:
        proxy.blackhole()
        with pytest.raises(TimeoutError):
            _ask(proxy.port, timeout=0.3)
        assert proxy.bytes_up == 5
        assert proxy.bytes_down == 0
        proxy.restore()
        assert _ask(proxy.port) == b"HELLO"


def test_drop_answers_forwards_the_request_but_loses_the_answer(echo: int) -> None:
    with TcpProxy(echo) as proxy:
        proxy.drop_answers()
        with pytest.raises(TimeoutError):
            _ask(proxy.port, b"lost", timeout=0.3)
        assert proxy.bytes_up == 4
        proxy.restore()
        assert _ask(proxy.port) == b"HELLO"

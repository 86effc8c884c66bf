"""A TCP proxy between a shop node and the county server whose line a test can cut."""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import threading
import time

# How often blocked threads look up from their sockets to see whether the proxy changed mode.
POLL_SECONDS = 0.05


def _reset(sock: socket.socket) -> None:
    """Close with RST, not FIN: the peer sees 'connection reset', as when a line drops."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Pair:
    """A forwarded connection's two sockets, closed once both directions have ended."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.sockets = (client, upstream)
        self._left = 2
        self._lock = threading.Lock()

    def done(self) -> bool:
        with self._lock:
            self._left -= 1
            return self._left == 0


class TcpProxy:
    """Listens on a loopback port and forwards every connection to (host, port) upstream.

    `cut()` resets every live connection and closes the listening socket, so new ones are
    refused; `blackhole()` accepts but never answers (the client's timeout fires);
    `drop_answers()` forwards requests but loses the answers; `restore()` forwards again
    on the same port. Bytes are counted in both directions as they reach the proxy,
    forwarded or not.
    """

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode = "open"
        self.bytes_up = 0  # client -> county
        self.bytes_down = 0  # county -> client
        self.connections_accepted = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._closed = False

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def close(self) -> None:
        self._closed = True
        self._stop_listening()
        self._drop_all()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the line ---------------------------------------------------------------------

    def cut(self) -> None:
        """The line is down: live connections reset, new ones refused."""
        with self._lock:
            self.mode = "cut"
        self._stop_listening()
        self._drop_all()

    def blackhole(self) -> None:
        """The line hangs: connections are accepted (or kept) but nothing ever comes back."""
        with self._lock:
            self.mode = "blackhole"
        # Live connections go silent too: their pumps stop forwarding (see _pump).
        if self._listener is None:
            self._listen()

    def drop_answers(self) -> None:
        """Requests reach the county, its answers are lost: the worst moment of a sync."""
        with self._lock:
            self.mode = "drop_answers"
        if self._listener is None:
            self._listen()

    def restore(self) -> None:
        """The line is back: forward again, on the same port."""
        self._drop_all()  # connections held in the blackhole end; clients retry
        with self._lock:
            self.mode = "open"
        if self._listener is None:
            self._listen()

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_up = self.bytes_down = 0
            self.connections_accepted = 0

    # -- internals --------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError as exc:
                # The port of a just-closed listener may linger a moment; it is ours.
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(POLL_SECONDS)
        listener.listen(128)
        listener.settimeout(POLL_SECONDS)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(listener,), name="proxy-accept", daemon=True
        )
        self._acceptor.start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.close()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None and acceptor is not threading.current_thread():
            acceptor.join(timeout=2)

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _reset(sock)

    def _track(self, *socks: socket.socket) -> bool:
        with self._lock:
            if self.mode == "cut" or self._closed:
                return False
            self._sockets.update(socks)
            return True

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections_accepted += 1
                mode = self.mode
            if mode == "cut":
                _reset(client)
                continue
            if mode == "blackhole":
                if self._track(client):
                    threading.Thread(
                        target=self._swallow, args=(client,), name="proxy-hole", daemon=True
                    ).start()
                else:
                    _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            if not self._track(client, upstream):
                _reset(client)
                _reset(upstream)
                continue
            # A line adds no delay of its own: without this, a request's headers and body
            # forwarded as two segments wait out the county's delayed ACK (Nagle), 40 ms.
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(pair, src, dst, up), name="proxy-pump", daemon=True
                ).start()

    def _swallow(self, sock: socket.socket) -> None:
        """Read and discard whatever arrives, answer nothing, until the proxy drops it."""
        sock.settimeout(POLL_SECONDS)
        while True:
            try:
                data = sock.recv(65536)
                if not data:
                    break
                with self._lock:
                    self.bytes_up += len(data)
            except TimeoutError:
                continue
            except OSError:
                break
        self._forget(sock)

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, up: bool) -> None:
        src.settimeout(POLL_SECONDS)
        try:
            while True:
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                with self._lock:
                    mode = self.mode
                    if up:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                # Blackhole: nothing gets through either way, the client waits for nothing.
                if mode == "blackhole" or (mode == "drop_answers" and not up):
                    continue
                dst.sendall(data)
        except OSError:
            _reset(dst)
        finally:
            if pair.done():
                self._forget(src)
                self._forget(dst)
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.close()

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

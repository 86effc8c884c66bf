"""`integrity-pos serve`: waitress, in one process or in several sharing one socket.

One Python process runs on one core at a time (the GIL), so a county server with more
cores serves from several: the parent binds the socket once, forks the workers, and each
builds its own app (its own database pool) after the fork and accepts on the shared
socket. The parent only forwards SIGTERM and SIGINT and waits. Windows has no fork: there
the server is one process, as it always was.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any

IDENT = "integrity-pos"
# Connections waiting to be accepted; a redemption day's queue at 13 shops fits easily.
BACKLOG = 1024
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def default_workers() -> int:
    """One per core, at most two (measured best on the county's 2-core server); 1 on Windows."""
    if not hasattr(os, "fork"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def app_factory(create_app: Callable[..., Any], threads: int) -> Callable[[], Any]:
    """The app for `threads` waitress threads: its pool keeps a connection for each.

    Every thread holds a connection for its whole request; with a smaller pool the extra
    ones are opened and closed request by request, a new PostgreSQL backend each time.
    """

    def make() -> Any:
        from config.settings import load_settings

        options = dict(load_settings().get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("pool_size", threads)
        return create_app({"SQLALCHEMY_ENGINE_OPTIONS": options})

    return make


def listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(address)
    sock.listen(BACKLOG)
    return sock


def serve(make_app: Callable[[], Any], *, host: str, port: int, threads: int, workers: int) -> int:
    """Serve until told to stop; the exit status (0 after a requested stop)."""
    import waitress

    if workers <= 1 or not hasattr(os, "fork"):
        waitress.serve(_built(make_app), host=host, port=port, threads=threads, ident=IDENT)
        return 0
    sock = listening_socket(host, port)
    parent = os.getpid()
    children: set[int] = set()
    stopping = False

    def stop(_signum: int = signal.SIGTERM, _frame: Any = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    # Installed before the first fork, so a signal never finds a half-started set.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The workers start accepting together, once every one has built its app: the first
    # one ready would otherwise take every waiting connection, and with keep-alive keep
    # them (the counters reconnecting after a restart would all land on one core).
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    for _ in range(workers):
        sys.stdout.flush()
        sys.stderr.flush()
        # Blocked across the fork: a child must not run the parent's handler before it
        # has its own, and the parent must know a child's pid before it can forward.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            os.close(go_w)
            _worker(make_app, sock, threads, parent, ready_w, go_r)  # never returns
        children.add(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    sock.close()
    os.close(ready_w)
    os.close(go_r)
    ready = 0
    # Ends early, at end of file, if a worker dies before it is ready; the wait below
    # then stops the others.
    while ready < workers and (chunk := os.read(ready_r, workers)):
        ready += len(chunk)
    os.close(ready_r)
    os.close(go_w)
    status = 0
    while children:
        try:
            pid, _wait_status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping:
            # A worker that dies on its own takes the others down with it: the service
            # manager restarts the whole server, rather than it limping on with fewer.
            print(f"{IDENT}: worker {pid} exited; stopping the others", file=sys.stderr)
            status = 1
            stop()
    return status


def _worker(
    make_app: Callable[[], Any],
    sock: socket.socket,
    threads: int,
    parent: int,
    ready: int,
    go: int,
) -> None:
    """A forked child: build the app here (no pool is shared with the parent), serve, exit."""
    import waitress

    code = 0
    try:
        # The parent decides when to stop; a terminal's Ctrl-C reaches it too.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _stop_worker)
        _die_with_parent(parent)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        app = _built(make_app)
        os.write(ready, b"1")
        os.close(ready)
        os.read(go, 1)  # end of file: every worker is ready
        os.close(go)
        waitress.serve(app, sockets=[sock], threads=threads, ident=IDENT)
    except SystemExit:
        pass
    except BaseException:  # the child must never return into the parent's click command
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _built(make_app: Callable[[], Any]) -> Any:
    """The app, with everything made so far kept out of the garbage collector's sweeps.

    The app, its models, schemas and OpenAPI document are some 170,000 objects that live
    as long as the process. Full collections are rare under load, but one walking them
    all took about 90 ms, stalling every request of that worker meanwhile.
    """
    app = make_app()
    gc.collect()
    gc.freeze()
    return app


def _stop_worker(_signum: int, _frame: Any) -> None:
    # waitress ends its loop on SystemExit and lets running requests finish (5 s at most).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(0)


def _die_with_parent(parent: int) -> None:
    """A parent killed outright (SIGKILL) must not leave its workers serving the port."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: no parent-death signal
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)

"""`integrity-pos serve`: gunicorn's pre-fork server on Linux, waitress in one process elsewhere.

One Python process runs on one core at a time (the GIL), so a county server with more
cores serves from several: gunicorn's arbiter binds the socket once, forks the workers
(gthread: each a pool of threads), and each builds its own app (its own database pool)
after the fork. Windows, where the shop counter PCs are, has no fork and no gunicorn:
there waitress serves from one process, as it always has.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

IDENT = "integrity-pos"
# Connections waiting to be accepted; a redemption day's queue at 13 shops fits easily.
BACKLOG = 1024
# How long running requests may finish after SIGTERM before their worker is killed.
GRACEFUL_SECONDS = 5
# How long the first workers wait for each other to build their apps (a few seconds each).
START_TOGETHER_SECONDS = 20


def gunicorn_available() -> bool:
    return sys.platform != "win32" and importlib.util.find_spec("gunicorn") is not None


def default_workers() -> int:
    """One per core, at most two (measured best on the county's 2-core server); 1 on Windows."""
    if not gunicorn_available():
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def check_settings() -> None:
    """Refuse settings the app cannot start with before any worker is forked.

    The workers build the app, so without this a bad DATABASE_URL would surface as each
    worker failing to boot instead of as one plain sentence.
    """
    from config.settings import load_settings
    from core.dialects import check_url

    check_url(load_settings()["SQLALCHEMY_DATABASE_URI"])


def app_factory(create_app: Callable[..., Any], threads: int) -> Callable[[], Any]:
    """The app for `threads` server threads: its pool keeps a connection for each.

    Every thread holds a connection for its whole request; with a smaller pool the extra
    ones are opened and closed request by request, a new PostgreSQL backend each time.
    """

    def make() -> Any:
        from config.settings import load_settings

        options = dict(load_settings().get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("pool_size", threads)
        return create_app({"SQLALCHEMY_ENGINE_OPTIONS": options})

    return make


def gunicorn_options(*, host: str, port: int, threads: int, workers: int) -> dict[str, Any]:
    """Our flags in gunicorn's setting names."""
    address = f"[{host}]" if ":" in host else host
    return {
        "bind": [f"{address}:{port}"],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "backlog": BACKLOG,
        "graceful_timeout": GRACEFUL_SECONDS,
        "proc_name": IDENT,
        # The default control socket is one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl):
        # two servers on one machine (a test and a benchmark) would take it from each other.
        "control_socket_disable": True,
    }


def start_together(workers: int) -> Callable[[Any], None]:
    """A post_worker_init hook: the first workers start accepting together, once all are built.

    The first one ready would otherwise take every waiting connection and, with keep-alive,
    keep them: the counters reconnecting after a restart would all land on one core.
    """
    # Made in the arbiter before it forks, so every worker shares it.
    barrier = multiprocessing.get_context("fork").Barrier(workers)

    def wait(worker: Any) -> None:
        # A worker started later (one replacing a dead one) has no one to wait for.
        if worker.age <= workers:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=START_TOGETHER_SECONDS)

    return wait


def serve(make_app: Callable[[], Any], *, host: str, port: int, threads: int, workers: int) -> int:
    """Serve until told to stop (SIGTERM or Ctrl-C); the exit status."""
    if gunicorn_available():
        options = gunicorn_options(host=host, port=port, threads=threads, workers=workers)
        if workers > 1:
            options["post_worker_init"] = start_together(workers)
        return _run_gunicorn(make_app, options)
    import waitress

    waitress.serve(_built(make_app), host=host, port=port, threads=threads, ident=IDENT)
    return 0


def _run_gunicorn(make_app: Callable[[], Any], options: dict[str, Any]) -> int:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
        """gunicorn's documented custom application: our settings, our app factory."""

        def load_config(self) -> None:
            for key, value in options.items():
                # Settings a future gunicorn drops are left out rather than refused.
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            # Runs in each worker after the fork: no pool or thread crosses from the arbiter.
            return _built(make_app)

    Server().run()  # the arbiter leaves through sys.exit with its status
    return 0


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

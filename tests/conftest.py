"""Shared fixtures: one app per backend for the session, each test on a clean database.

Building an app (blueprints, the OpenAPI document) and its schema took most of every
test's time, so both are built once per backend and each test gets the schema back
empty: on SQLite a copy of a template file, on PostgreSQL the tables and sequences the
last test used emptied and restarted. Whatever a test changes on the shared app (settings,
rate limits, per-app state) is put back after it. A test that changes what the app is
made of (its routes) gets an app of its own: `@pytest.mark.own_app`, or a fixture in
OWN_APP_FIXTURES.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from config.app import create_app
from config.settings import normalize_database_url
from core.db import configure_engine, db
from core.limits import limiter
from ledger.services import ensure_system_accounts
from tests.factories import Factory

PG_URL = os.environ.get("TEST_DATABASE_URL")
# Without TEST_DATABASE_URL the PostgreSQL cases are deselected at collection and the
# summary says so in one line (pytest_terminal_summary below).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres_only)]
# Fixtures that change the app itself (its routes), which a shared app would keep.
OWN_APP_FIXTURES = {"worker_app"}

_PG_DESELECTED = pytest.StashKey[int]()


def app_settings(home: Path, url: str, **extra: Any) -> dict[str, Any]:
    settings = {
        "TESTING": True,
        "HOME": str(home),
        "SECRET_KEY": "test-secret",
        "CARD_SIGNING_KEY": "test-card-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        # The suite signs in hundreds of times a minute from one address.
        "LOGIN_RATE_LIMIT": "100000 per minute",
    }
    settings.update(extra)
    return settings


class Databases:
    """The schema built once per backend, handed to each test empty but for the system accounts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._sqlite_template: Path | None = None
        self._pg: Engine | None = None
        self._pg_tables: list[str] = []
        self._pg_sequences: list[str] = []
        self._pg_used = ""
        self._pg_delete = True

    def fresh_url(self, backend: str, sqlite_path: Path) -> str:
        """A clean database: a copy of the template at sqlite_path, or PostgreSQL emptied."""
        if backend == "postgresql":
            self._empty_postgresql()
            return normalize_database_url(_pg_url())
        template = self._template()
        # Leftovers of the last test's WAL would be replayed into the new copy.
        for suffix in ("-wal", "-shm"):
            Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
        # A new file moved into place, never one rewritten: a connection a test leaked
        # keeps the old file and cannot see, or damage, this test's.
        partial = sqlite_path.with_name(sqlite_path.name + ".copying")
        shutil.copyfile(template, partial)
        os.replace(partial, sqlite_path)
        return f"sqlite:///{sqlite_path}"

    def close(self) -> None:
        if self._pg is not None:
            self._pg.dispose()

    def _template(self) -> Path:
        if self._sqlite_template is None:
            path = self.root / "template.db"
            engine = create_engine(f"sqlite:///{path}")
            configure_engine(engine)
            db.metadata.create_all(engine)
            _add_system_accounts(engine)
            # Closing the last connection checkpoints the WAL: the file alone is the template.
            engine.dispose()
            self._sqlite_template = path
        return self._sqlite_template

    def _empty_postgresql(self) -> None:
        if self._pg is None:
            self._pg = self._build_postgresql()
        with self._pg.begin() as conn:
            if self._pg_delete:
                # Only what the last test used, asked in one round trip: a test touches a
                # few of the tables and sequences.
                used = set(conn.scalars(text(self._pg_used)))
                tables = [name for name in self._pg_tables if name in used]
                sequences = [name for name in self._pg_sequences if name in used]
                # DELETE, not TRUNCATE: a test's few rows go in a few milliseconds, where
                # TRUNCATE swaps the files of every table and index (some 100 ms). As
                # replica, the audit log's append-only trigger and the foreign keys
                # stay quiet.
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                statements = [f'DELETE FROM "{name}"' for name in tables]
                statements += [f'ALTER SEQUENCE "{name}" RESTART' for name in sequences]
                if statements:
                    conn.exec_driver_sql("; ".join(statements))
            else:
                names = ", ".join(f'"{name}"' for name in self._pg_tables)
                conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            with Session(bind=conn) as session:
                ensure_system_accounts(session)

    def _build_postgresql(self) -> Engine:
        # Pinged before use: a test restarts PostgreSQL under the suite (tests/pos/test_faults.py).
        engine = create_engine(normalize_database_url(_pg_url()), pool_pre_ping=True)
        with engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            db.metadata.create_all(conn)
            self._pg_sequences = list(conn.scalars(text(_SEQUENCES)))
        # Children first, so the fallback's order never matters to a foreign key.
        self._pg_tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        # Tables with rows, and sequences read since their restart (last_value is null
        # until the first nextval).
        self._pg_used = " UNION ALL ".join(
            [f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in self._pg_tables]
            + [_SEQUENCES + " AND last_value IS NOT NULL"]
        )
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        except DBAPIError:
            # Only a superuser may switch triggers off; anyone may TRUNCATE their tables.
            self._pg_delete = False
        try:
            with engine.begin() as conn:
                # A commit need not wait for the disk in a throwaway database: the factories
                # commit row by row, and that wait was a tenth of the PostgreSQL run. What
                # a test can see is unchanged; only a crash could lose the last commits.
                name = conn.scalar(text("SELECT current_database()"))
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        except DBAPIError:
            pass  # not the database's owner: the suite is only slower
        engine.dispose()  # the setting applies to connections opened from now on
        return engine


_SEQUENCES = "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"


def _pg_url() -> str:
    assert PG_URL, "TEST_DATABASE_URL is not set"
    return PG_URL


def _add_system_accounts(engine: Engine) -> None:
    with Session(engine) as session:
        ensure_system_accounts(session)
        session.commit()


_session: dict[str, Databases] = {}


@pytest.fixture(autouse=True, scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    found = Databases(tmp_path_factory.mktemp("databases"))
    # make_test_app is a plain function the tests call: it finds the session's here.
    _session["databases"] = found
    yield found
    found.close()
    del _session["databases"]


def make_test_app(backend: str, home: Path, **extra: Any) -> Flask:
    """An app of its own on a clean database: for tests that change what the app is made of."""
    url = _session["databases"].fresh_url(backend, home / "test.db")
    return create_app(app_settings(home, url, **extra))


class SharedApp:
    """One backend's app for the whole session, and what it was like before any test ran."""

    def __init__(self, app: Flask, sqlite_path: Path) -> None:
        self.app = app
        self.sqlite_path = sqlite_path
        self.config = copy.deepcopy(dict(app.config))
        self.extensions = set(app.extensions)

    def restore(self) -> None:
        """Undo what a test did to the app: its settings, rate limits and per-app state."""
        if dict(self.app.config) != self.config:
            self.app.config.clear()
            self.app.config.update(copy.deepcopy(self.config))
        limiter.reset()
        # State made on first use (printing's worker and caches) starts over next time.
        for name in set(self.app.extensions) - self.extensions:
            del self.app.extensions[name]


@pytest.fixture(scope="session")
def shared_apps(databases: Databases) -> dict[str, SharedApp]:
    return {}


def _shared_app(apps: dict[str, SharedApp], databases: Databases, backend: str) -> SharedApp:
    if backend not in apps:
        home = databases.root / f"{backend}-home"
        home.mkdir()
        sqlite_path = home / "test.db"
        url = databases.fresh_url(backend, sqlite_path)
        apps[backend] = SharedApp(create_app(app_settings(home, url)), sqlite_path)
    return apps[backend]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app(
    request: pytest.FixtureRequest,
    backend: str,
    databases: Databases,
    shared_apps: dict[str, SharedApp],
) -> Iterator[Flask]:
    changes_the_app = bool(OWN_APP_FIXTURES & set(request.fixturenames))
    if changes_the_app or request.node.get_closest_marker("own_app"):
        home = request.getfixturevalue("tmp_path")
        app = make_test_app(backend, home)
        try:
            with app.app_context():
                yield app
                db.session.remove()
                db.engine.dispose()
        finally:
            # One limiter serves every app in the process.
            limiter.reset()
        return
    shared = _shared_app(shared_apps, databases, backend)
    databases.fresh_url(backend, shared.sqlite_path)
    try:
        with shared.app.app_context():
            yield shared.app
            db.session.remove()
            # No connection may outlive the test: the next one replaces the SQLite file.
            db.engine.dispose()
    finally:
        shared.restore()


@pytest.fixture
def session(app: Flask) -> Any:
    return db.session


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def factory(app: Flask) -> Factory:
    return Factory(db.session)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app behind a real waitress server on a loopback port, for real HTTP clients."""
    with serve_wsgi(app) as url:
        yield url


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Any WSGI app behind a real waitress server on a loopback port; its base URL."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=16)
    stop = threading.Event()

    def serve() -> None:
        # Closing the server under a running loop makes select() fail on a dead socket;
        # short loop turns let the thread stop first and close afterwards.
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
        server.task_dispatcher.shutdown()


# --- PostgreSQL in one line when it is not there ---------------------------------------


def _needs_postgresql(item: pytest.Item) -> bool:
    if item.get_closest_marker("postgres_only"):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("backend") == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    skipped = [item for item in items if _needs_postgresql(item)]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if not _needs_postgresql(item)]
    config.stash[_PG_DESELECTED] = len(skipped)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    skipped = config.stash.get(_PG_DESELECTED, 0)
    if skipped:
        tests = "test" if skipped == 1 else "tests"
        terminalreporter.write_line(
            f"PostgreSQL: {skipped} {tests} not run, TEST_DATABASE_URL is not set "
            "(make test-pg runs them)"
        )


def database_url_for_threads(app: Flask) -> str:
    return make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=False)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> Iterator[None]:
    """Cheap password hashes in tests: scrypt's 0.1 s per user would dominate the suite."""
    import functools

    from werkzeug.security import generate_password_hash

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "accounts.auth.generate_password_hash",
            functools.partial(generate_password_hash, method="pbkdf2:sha256:1000"),
        )
        yield


@pytest.fixture
def thread_engine(app: Flask) -> Iterator[Any]:
    """An engine on the test database whose every session is its own real connection.

    NullPool, so N threads hold N connections at once; configure_engine, so SQLite
    sessions begin IMMEDIATE exactly as the app's do.
    """
    from sqlalchemy.pool import NullPool

    from core.db import configure_engine

    # The test's own session must not hold SQLite's write lock while threads run.
    db.session.rollback()
    engine = create_engine(database_url_for_threads(app), poolclass=NullPool)
    configure_engine(engine)
    yield engine
    engine.dispose()


def count_rows(model: Any) -> int:
    """Rows of a table, read in a fresh transaction so other connections' commits show."""
    from sqlalchemy import func, select

    db.session.rollback()
    try:
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        # End the read at once: on SQLite it began IMMEDIATE and would block other writers.
        db.session.rollback()


API_ERROR_CODES = {
    "unauthenticated",
    "forbidden",
    "not_found",
    "validation_error",
    "idempotency_conflict",
    "insufficient_points",
    "out_of_stock",
    "unknown_product",
    "unknown_card",
    "invalid_card",
    "card_revoked",
    "return_exceeds_sale",
    "conflict",
}


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 9457 answer with API.md's fields and one of its machine codes."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["code"] in API_ERROR_CODES
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture(autouse=True, scope="session")
def _fresh_g_per_request() -> Iterator[None]:
    """Give every test request an empty `g`, as a served request always has.

    The app fixture keeps an app context pushed, and Flask reuses it for test-client
    requests, so `g` (the API actor, Flask-Login's user, Flask-Babel's locale) would
    otherwise carry over from one request to the next and hide authorization bugs.
    """
    from flask import g, request_started

    def clear(_sender: Any, **_extra: Any) -> None:
        g.__dict__.clear()

    request_started.connect(clear)
    yield
    request_started.disconnect(clear)


@pytest.fixture(autouse=True, scope="session")
def _every_table_on_the_metadata(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Build one throwaway app before any test, since create_app imports every package's models.

    The first PostgreSQL reset creates the tables the metadata knows at that moment; when
    a run starts with a module that imports fewer packages (`-k`, one file), later
    TRUNCATEs would name tables that were never created.
    """
    create_app(
        {
            "TESTING": True,
            "HOME": str(tmp_path_factory.mktemp("metadata")),
            "SECRET_KEY": "x",
            "CARD_SIGNING_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
        }
    )


# --- real browser ----------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    """Skip without Debian's Chromium, except in CI, where a silent skip would hide breakage."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: a sync Playwright left running would make every later
    # module's own sync_playwright() refuse to start in the same thread.
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN")
    context.set_default_timeout(10_000)
    page = context.new_page()
    # Every browser test also proves the pages keep to the Content-Security-Policy.
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert not refused, f"the page broke its Content-Security-Policy: {refused}"


def browser_sign_in(
    page: Any, live_server: str, username: str, password: str | None = None
) -> None:
    """Sign in through the real login page, as a person would, and wait for the next page."""
    from tests.factories import PASSWORD

    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or PASSWORD)
    page.press("input[name=password]", "Enter")
    # Not `{live_server}/**`: that matches the login page itself and returns before the
    # sign-in has landed, so the next `goto` would race the form's own navigation.
    page.wait_for_url(lambda url: url.startswith(live_server) and "/login" not in url)

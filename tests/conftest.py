"""Shared fixtures: an app per test on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config.app import create_app
from config.settings import normalize_database_url
from core.db import db
from ledger.services import ensure_system_accounts
from tests.factories import Factory

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql", marks=pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL not set")
    ),
]

_pg_schema_ready = False


def _reset_postgres(url: str) -> None:
    """Create the schema once per run; afterwards empty every table between tests."""
    global _pg_schema_ready
    engine = create_engine(url)
    with engine.begin() as conn:
        if not _pg_schema_ready:
            db.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            db.metadata.create_all(conn)
            _pg_schema_ready = True
        else:
            names = ", ".join(t.name for t in db.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_test_app(backend: str, home: Path, **extra: Any) -> Flask:
    if backend == "postgresql":
        assert PG_URL
        url = normalize_database_url(PG_URL)
        _reset_postgres(url)
    else:
        url = f"sqlite:///{home / 'test.db'}"
    config = {
        "TESTING": True,
        "HOME": str(home),
        "SECRET_KEY": "test-secret",
        "CARD_SIGNING_KEY": "test-card-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        # The suite signs in hundreds of times a minute from one address.
        "LOGIN_RATE_LIMIT": "100000 per minute",
    }
    config.update(extra)
    app = create_app(config)
    with app.app_context():
        if backend == "sqlite":
            db.create_all()
        ensure_system_accounts(db.session)
        db.session.commit()
    return app


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app(backend: str, tmp_path: Path) -> Iterator[Flask]:
    app = make_test_app(backend, tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


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

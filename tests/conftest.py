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
from config.db import db
from config.settings import normalize_database_url
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
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


def database_url_for_threads(app: Flask) -> str:
    return make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=False)

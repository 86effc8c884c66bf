"""Every difference between SQLite and PostgreSQL the app relies on, asked in one place.

The app runs on these two and no other: SQLite embedded at a shop or for a demo,
PostgreSQL in production. Statements that differ (upserts, row locks, a single round trip
with RETURNING over arrays) pick their form here by the bound dialect's name, and any
other database is refused with a plain message when the app starts, not with a KeyError
in the middle of a sale.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, scoped_session

POSTGRESQL = "postgresql"
SQLITE = "sqlite"
SUPPORTED = (SQLITE, POSTGRESQL)
_INSERT = {SQLITE: sqlite.insert, POSTGRESQL: postgresql.insert}


class UnsupportedDatabase(ValueError):
    """A database URL for a backend the app does not run on."""


def check_url(url: Any) -> str:
    """The backend name of a SQLAlchemy URL, or UnsupportedDatabase naming what is wanted."""
    name = make_url(url).get_backend_name()
    if name not in SUPPORTED:
        raise UnsupportedDatabase(
            f"DATABASE_URL names {name!r}; this app runs on SQLite (sqlite:///path) or "
            "PostgreSQL (postgresql://user@host/db) only"
        )
    return name


def name_of(bind: Session | scoped_session[Any] | Connection | Engine) -> str:
    """'sqlite' or 'postgresql' for a session (scoped or not), connection or engine."""
    if isinstance(bind, Session | scoped_session):
        bind = bind.get_bind()
    name = bind.dialect.name
    if name not in SUPPORTED:
        raise UnsupportedDatabase(f"unsupported database {name!r}")
    return name


def is_postgresql(bind: Session | scoped_session[Any] | Connection | Engine) -> bool:
    return name_of(bind) == POSTGRESQL


def insert_for(name: str) -> Any:
    """The dialect's own insert(), the one with on_conflict_do_nothing/do_update."""
    return _INSERT[name]


def insert(bind: Session | scoped_session[Any] | Connection | Engine, table: Any) -> Any:
    """An INSERT on table with the bound dialect's ON CONFLICT support."""
    return _INSERT[name_of(bind)](table)

"""The database handle, declarative base, column types and the one place that commits."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, Engine, MetaData, event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone type; storing naive UTC there and tagging it on the way out
    keeps comparisons and the ledger's hash input identical on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    # Microseconds are the finest grain both backends keep.
    return datetime.now(UTC)


def configure_engine(engine: Engine) -> None:
    """SQLite: every transaction begins IMMEDIATE, so read-then-write never hits SQLITE_BUSY.

    This is SQLAlchemy's documented recipe for pysqlite's broken transaction handling:
    take BEGIN away from the driver and emit our own.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


P = ParamSpec("P")
R = TypeVar("R")

# PostgreSQL SQLSTATEs worth a fresh try: serialization failure, deadlock, unique
# violation (two requests racing on one idempotency key: the loser replays the winner).
_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}


def _is_retryable(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    # SQLite: a unique clash is settled by the retry, which sees the winner's row.
    return isinstance(exc, IntegrityError) and "UNIQUE" in str(exc.orig)


def transactional(attempts: int = 3) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run a request handler as one unit of work: commit once at the end, or roll back.

    Handlers call services (which flush but never commit); a race the database settles
    (a deadlock, a concurrent insert of the same idempotency key) is retried from the
    start, so the second try sees the first one's committed result and replays it.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(1, attempts + 1):
                committing = False
                try:
                    result = fn(*args, **kwargs)
                    committing = True
                    db.session.commit()
                    return result
                except (IntegrityError, OperationalError) as exc:
                    db.session.rollback()
                    # A connection lost before COMMIT was sent recorded nothing: a fresh
                    # connection may try again. Lost during COMMIT, the outcome is unknown,
                    # so the client retries with its key instead.
                    lost = getattr(exc, "connection_invalidated", False) and not committing
                    if attempt == attempts or not (lost or _is_retryable(exc)):
                        raise
                    time.sleep(0.01 * attempt)
                except BaseException:
                    db.session.rollback()
                    raise
            raise AssertionError("unreachable")

        return wrapper

    return decorate


def run_unit_of_work(operation: Callable[[], R]) -> R:
    """For pages: run service calls as the request's one unit of work (see transactional)."""
    return transactional()(operation)()

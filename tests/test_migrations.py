"""The committed migrations build exactly the models' schema on an empty database, and undo it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from config.app import create_app
from config.settings import normalize_database_url
from core.db import db
from tests.conftest import BACKENDS, PG_URL


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a database nobody has touched: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    assert PG_URL
    url = make_url(normalize_database_url(PG_URL))
    name = f"{url.database}_mig_{os.getpid()}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _diff() -> list[Any]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_upgrade_matches_the_models_and_downgrade_undoes_it(empty_database, tmp_path):
    app = create_app(
        {"HOME": str(tmp_path), "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": empty_database}
    )
    with app.app_context():
        try:
            upgrade()
            # Any entry here is a model change without a migration (regenerate it).
            assert _diff() == []
            tables = set(inspect(db.engine).get_table_names())
            assert tables == set(db.metadata.tables) | {"alembic_version"}
            _assert_the_audit_log_is_append_only()

            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}

            # And back up again: the downgrade left nothing that blocks a fresh upgrade.
            upgrade()
            assert _diff() == []
        finally:
            db.session.remove()
            db.engine.dispose()


def _assert_the_audit_log_is_append_only() -> None:
    """The migration's hand-written triggers: the log takes inserts and nothing else."""
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO audit_events (at, actor, action) VALUES (:at, 'x', 'y')"),
            {"at": "2026-11-27 00:00:00+00:00"},
        )
    for statement in ("UPDATE audit_events SET actor = 'z'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))


def test_upgrade_keeps_the_rows_of_a_database_in_use(empty_database, tmp_path):
    """0001 -> head over real rows: batch rebuilds must not trip over foreign keys."""
    app = create_app(
        {"HOME": str(tmp_path), "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": empty_database}
    )
    now = "2026-11-01 08:00:00+00:00"
    with app.app_context():
        try:
            upgrade(revision="0001")
            with db.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO villages (id, code, name, redemption_floor, created_at) "
                        "VALUES (1, 'ZJB', '郑家榜村', 0, :now)"
                    ),
                    {"now": now},
                )
                conn.execute(
                    text(
                        "INSERT INTO point_rules (id, code, title, points, per, active, "
                        "created_at) VALUES (1, 'CLEAN', '清扫', 3, 'household', TRUE, :now)"
                    ),
                    {"now": now},
                )
                for account_id, kind, code in ((1, "issuance", "ISSUANCE"), (2, "shop", "X")):
                    conn.execute(
                        text(
                            "INSERT INTO accounts (id, kind, code, balance, earned_total, "
                            "penalty_total, redeemed_total, entry_count, head_hash, created_at) "
                            "VALUES (:id, :kind, :code, 0, 0, 0, 0, 0, :zero, :now)"
                        ),
                        {
                            "id": account_id,
                            "kind": kind,
                            "code": code,
                            "zero": "0" * 64,
                            "now": now,
                        },
                    )
                conn.execute(
                    text(
                        "INSERT INTO transfers (id, idempotency_key, request_hash, kind, "
                        "debit_account_id, credit_account_id, amount, chain_account_id, "
                        "entry_seq, balance_after, rule_id, created_at, prev_hash, hash) "
                        "VALUES (1, 'k', 'h', 'award', 1, 2, 3, 2, 1, 3, 1, :now, :zero, :zero)"
                    ),
                    {"now": now, "zero": "0" * 64},
                )
            upgrade()
            assert _diff() == []
            with db.engine.connect() as conn:
                assert conn.execute(text("SELECT rule_id FROM transfers")).scalar() == 1
                assert conn.execute(text("SELECT category_id FROM point_rules")).one() == (None,)
        finally:
            db.session.remove()
            db.engine.dispose()


def test_locks_in_force_survive_the_move_to_sign_in_failures(empty_database, tmp_path):
    """0002 -> 0003: the lockout leaves the users table and takes its locks and counts along."""
    app = create_app(
        {"HOME": str(tmp_path), "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": empty_database}
    )
    with app.app_context():
        try:
            upgrade(revision="0002")
            with db.engine.begin() as conn:
                for user_id, name, failed, until in (
                    (1, "locked", 0, "2099-01-01 00:00:00+00:00"),
                    (2, "counting", 3, None),
                    (3, "clean", 0, None),
                ):
                    conn.execute(
                        text(
                            "INSERT INTO users (id, username, password_hash, role, active, "
                            "created_at, failed_logins, locked_until) VALUES (:id, :name, 'h', "
                            "'clerk', TRUE, '2026-11-01 08:00:00+00:00', :failed, :until)"
                        ),
                        {"id": user_id, "name": name, "failed": failed, "until": until},
                    )
            upgrade()
            assert _diff() == []
            with db.engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT username, failures, locked_until IS NOT NULL "
                        "FROM sign_in_failures ORDER BY username"
                    )
                ).all()
            assert [tuple(r) for r in rows] == [("counting", 3, False), ("locked", 0, True)]
        finally:
            db.session.remove()
            db.engine.dispose()

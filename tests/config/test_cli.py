"""The integrity-pos CLI: users, tokens, the demo county, verify, and init-db on a fresh home."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select

from accounts.auth import User, sign_in
from config.app import create_app
from config.cli import main
from core.db import db, utcnow
from core.dialects import UnsupportedDatabase
from ledger.models import Account, Household, Transfer, Village


@pytest.fixture(autouse=True)
def english(request):
    """CLI messages in English, so assertions follow the source, not the catalogue."""
    if "app" not in request.fixturenames:
        return
    import flask_babel

    app = request.getfixturevalue("app")
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    flask_babel.refresh()


def test_cli_speaks_chinese_by_default(app, runner, session):
    import flask_babel

    app.config["BABEL_DEFAULT_LOCALE"] = "zh_CN"
    flask_babel.refresh()
    result = runner.invoke(main, ["create-user", "x", "--role", "cadre", "--password", "x" * 8])
    assert result.exit_code == 1
    assert re.search(r"[\u4e00-\u9fff]", result.output), result.output


def test_cli_runs_against_the_test_app(app, runner):
    # FlaskCliRunner hands our FlaskGroup a ScriptInfo for the fixture app, not a new one.
    result = runner.invoke(main, ["routes"])
    assert result.exit_code == 0, result.output
    assert "/api/v1/awards" in result.output
    assert db.engine.url.render_as_string() == app.config["SQLALCHEMY_DATABASE_URI"]


def test_create_user_with_password_option(runner, session):
    result = runner.invoke(
        main, ["create-user", "office", "--role", "admin", "--password", "long enough pw"]
    )
    assert result.exit_code == 0, result.output
    assert "Created admin office." in result.output
    session.rollback()
    user = sign_in(session, "office", "long enough pw", now=utcnow()).user
    assert user is not None and user.role == "admin"
    assert user.village_code is None and user.shop_code is None


def test_create_user_prompts_for_the_password_twice(runner, session, factory):
    factory.village("GJY")
    result = runner.invoke(
        main,
        ["create-user", "cadre-gjy", "--role", "cadre", "--village", "GJY"],
        input="first password\nmistyped\nsecond password\nsecond password\n",
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    session.rollback()
    user = sign_in(session, "cadre-gjy", "second password", now=utcnow()).user
    assert user is not None and user.village_code == "GJY"


def test_create_user_for_a_shop(runner, session, factory):
    factory.shop("GJY")
    result = runner.invoke(
        main, ["create-user", "clerk-1", "--role", "clerk", "--shop", "GJY", "--password", "x" * 8]
    )
    assert result.exit_code == 0, result.output
    session.rollback()
    assert session.scalar(select(User.shop_code).where(User.username == "clerk-1")) == "GJY"


def test_create_user_refusals(runner, session):
    for args, exit_code, message in (
        (["--role", "boss"], 2, "Invalid value for '--role'"),
        (["--role", "cadre"], 1, "a cadre needs a village"),
        (["--role", "cadre", "--village", "NOPE"], 1, "no village NOPE"),
        (["--role", "clerk"], 1, "a manager or clerk needs a shop"),
        (["--role", "manager", "--shop", "NOPE"], 1, "no shop NOPE"),
        (["--role", "admin", "--password", "short"], 1, "at least 8 characters"),
        (["--role", "admin", "--username-typo"], 2, "No such option"),
    ):
        if "--password" not in args:
            args = [*args, "--password", "long enough pw"]
        result = runner.invoke(main, ["create-user", "someone", *args])
        assert result.exit_code == exit_code, (args, result.output)
        assert message in result.output, (args, result.output)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_create_user_twice_is_refused(runner, session):
    args = ["create-user", "office", "--role", "admin", "--password", "long enough pw"]
    assert runner.invoke(main, args).exit_code == 0
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert "exists" in result.output
    session.rollback()
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_create_token_prints_a_working_token(runner, client, factory):
    factory.user("admin", username="office")
    result = runner.invoke(main, ["create-token", "office", "--hours", "2"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("ipos_") and "\n" not in token
    r = client.get("/api/v1/villages", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    r = client.get("/api/v1/villages", headers={"Authorization": f"Bearer {token}x"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "args, exit_code", [(["nobody"], 1), (["office", "--hours", "0"], 2), (["office", "-x"], 2)]
)
def test_create_token_refusals(runner, factory, args, exit_code):
    factory.user("admin", username="office")
    result = runner.invoke(main, ["create-token", *args])
    assert result.exit_code == exit_code, result.output


def test_create_token_refuses_an_inactive_user(runner, factory):
    user = factory.user("admin", username="office")
    user.active = False
    factory.session.commit()
    result = runner.invoke(main, ["create-token", "office"])
    assert result.exit_code == 1 and "no active user office" in result.output


def test_seed_demo_once_then_refuse_or_skip(runner, session):
    result = runner.invoke(main, ["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "Seeded 3 villages, 30 households" in result.output
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Village)) == 3
    assert session.scalar(select(func.count()).select_from(Household)) == 30
    transfers = session.scalar(select(func.count()).select_from(Transfer))
    assert transfers > 30
    # Penalties may have taken households below zero; the ledger still adds up.
    verify = runner.invoke(main, ["ledger", "verify"])
    assert verify.exit_code == 0, verify.output
    assert f"transfers checked: {transfers}" in verify.output

    again = runner.invoke(main, ["seed-demo"])
    assert again.exit_code == 1
    assert "already has data" in again.output
    skipped = runner.invoke(main, ["seed-demo", "--skip-if-seeded"])
    assert skipped.exit_code == 0 and "already there" in skipped.output
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Transfer)) == transfers
    # The demo users sign in with the documented password.
    from config.demo import DEMO_PASSWORD

    assert sign_in(session, "cadre-zjb", DEMO_PASSWORD, now=utcnow()).user is not None


def test_seed_demo_refuses_cleanly_when_a_user_came_first(runner, session):
    # `make run` after `create-user admin`: a database with data, not a traceback.
    args = ["create-user", "admin", "--role", "admin", "--password", "long enough pw"]
    assert runner.invoke(main, args).exit_code == 0
    result = runner.invoke(main, ["seed-demo"])
    assert result.exit_code == 1 and "already has data" in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    skipped = runner.invoke(main, ["seed-demo", "--skip-if-seeded"])
    assert skipped.exit_code == 0, skipped.output
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Village)) == 0
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_init_db_twice_on_a_fresh_sqlite_home(tmp_path: Path):
    home = tmp_path / "home"
    app = create_app(
        {
            "HOME": str(home),
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fresh.db'}",
        }
    )
    runner = app.test_cli_runner()
    # No app context is pushed here: with_appcontext must push this app's, not a fixture's.
    for _ in range(2):
        result = runner.invoke(main, ["init-db"])
        assert result.exit_code == 0, result.output
        assert "latest revision" in result.output
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
        assert {"alembic_version", "villages", "households", "accounts", "transfers"} <= tables
        codes = db.session.scalars(select(Account.code).order_by(Account.code)).all()
        assert codes == ["issuance", "penalty"]
        db.session.remove()
        db.engine.dispose()
    for name in ("secret_key", "card_signing_key"):
        path = home / name
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert len(path.read_text().strip()) == 64


@pytest.mark.parametrize("args", [["init-db"], ["ledger", "verify"], ["--help"]])
def test_a_database_other_than_sqlite_or_postgresql_is_one_plain_line(tmp_path, monkeypatch, args):
    monkeypatch.setenv("INTEGRITY_POS_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "mysql://pos@db/pos")
    # No fixture app and no app context: the command builds its app as when installed.
    result = CliRunner().invoke(main, args)
    assert "DATABASE_URL names 'mysql'" in result.output
    assert "SQLite" in result.output and "PostgreSQL" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, UnsupportedDatabase)
    if args != ["--help"]:
        assert result.exit_code != 0

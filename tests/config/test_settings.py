"""Settings layer up as defaults < config.toml < environment; secrets are private and stable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from config.app import create_app
from config.settings import (
    DEFAULTS,
    ensure_secrets,
    instance_home,
    load_settings,
    normalize_database_url,
)
from core.dialects import UnsupportedDatabase


def _toml(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_defaults(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings["HOME"] == str(tmp_path)
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'integrity.db'}"
    assert settings["TIMEZONE"] == "Asia/Shanghai"
    assert settings["BABEL_DEFAULT_LOCALE"] == "zh_CN"
    assert settings["TOKEN_TTL_HOURS"] == 24
    assert settings["IMPORT_MAX_ROWS"] == DEFAULTS["IMPORT_MAX_ROWS"]
    # The defaults themselves are not changed by loading.
    load_settings(tmp_path, environ={"INTEGRITY_POS_TIMEZONE": "UTC"})
    assert DEFAULTS["TIMEZONE"] == "Asia/Shanghai"


def test_config_toml_overrides_defaults(tmp_path):
    _toml(
        tmp_path,
        'timezone = "Asia/Urumqi"\nTOKEN_TTL_HOURS = 8\nimport_max_rows = 100\n'
        'database_url = "postgres://pos@db.example/integrity"\n',
    )
    settings = load_settings(tmp_path, environ={})
    assert settings["TIMEZONE"] == "Asia/Urumqi"
    assert (settings["TOKEN_TTL_HOURS"], settings["IMPORT_MAX_ROWS"]) == (8, 100)
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://pos@db.example/integrity"
    assert "DATABASE_URL" not in settings
    assert settings["BABEL_DEFAULT_LOCALE"] == "zh_CN"


def test_environment_overrides_config_toml(tmp_path):
    _toml(
        tmp_path, 'timezone = "Asia/Urumqi"\ntoken_ttl_hours = 8\ndatabase_url = "sqlite:///a.db"\n'
    )
    environ = {
        "INTEGRITY_POS_TIMEZONE": "UTC",
        "INTEGRITY_POS_TOKEN_TTL_HOURS": "12",
        "DATABASE_URL": "postgresql://env@127.0.0.1/pos",
        "UNRELATED": "ignored",
    }
    settings = load_settings(tmp_path, environ=environ)
    assert settings["TIMEZONE"] == "UTC"
    # Numbers from the environment are numbers.
    assert settings["TOKEN_TTL_HOURS"] == 12
    # The environment's DATABASE_URL wins over the file's database_url.
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://env@127.0.0.1/pos"
    assert "UNRELATED" not in settings


def test_prefixed_database_url_is_honoured(tmp_path):
    settings = load_settings(
        tmp_path,
        environ={"INTEGRITY_POS_DATABASE_URL": "postgres://p@h/x", "DATABASE_URL": "sqlite://"},
    )
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://p@h/x"
    assert "DATABASE_URL" not in settings


def test_home_comes_from_the_environment(tmp_path):
    home = tmp_path / "pos-home"
    _toml(home, 'timezone = "UTC"\n')
    environ = {"INTEGRITY_POS_HOME": str(home)}
    assert instance_home(environ) == home
    settings = load_settings(environ=environ)
    assert settings["HOME"] == str(home) and settings["TIMEZONE"] == "UTC"
    assert "HOME" not in {k for k in settings if k.startswith("INTEGRITY_POS_")}
    assert instance_home({}) == Path("instance").resolve()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////srv/pos/integrity.db", "sqlite:////srv/pos/integrity.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_postgres_url_normalization(url, expected):
    assert normalize_database_url(url) == expected


def test_ensure_secrets_creates_private_files_and_is_stable(tmp_path):
    home = tmp_path / "new" / "home"
    first = ensure_secrets(home)
    assert set(first) == {"SECRET_KEY", "CARD_SIGNING_KEY"}
    assert first["SECRET_KEY"] != first["CARD_SIGNING_KEY"]
    for name in ("secret_key", "card_signing_key"):
        path = home / name
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert len(path.read_text().strip()) == 64
        int(path.read_text(), 16)
    assert ensure_secrets(home) == first
    # A copy restored with loose permissions is made private again, not regenerated.
    os.chmod(home / "secret_key", 0o644)
    assert ensure_secrets(home) == first
    assert stat.S_IMODE(os.stat(home / "secret_key").st_mode) == 0o600


def test_create_app_reads_the_layers_and_makes_secrets(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _toml(home, 'timezone = "Asia/Urumqi"\ntoken_ttl_hours = 6\n')
    for key in list(os.environ):
        if key.startswith("INTEGRITY_POS_") or key == "DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("INTEGRITY_POS_HOME", str(home))
    monkeypatch.setenv("INTEGRITY_POS_TOKEN_TTL_HOURS", "3")
    app = create_app()
    assert app.config["TIMEZONE"] == "Asia/Urumqi"
    assert app.config["TOKEN_TTL_HOURS"] == 3
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{home / 'integrity.db'}"
    assert app.config["SECRET_KEY"] == (home / "secret_key").read_text().strip()
    assert app.instance_path == str(home)
    # Test settings passed to the factory win over everything.
    assert create_app({"TIMEZONE": "UTC", "SECRET_KEY": "k"}).config["TIMEZONE"] == "UTC"


@pytest.mark.parametrize(
    "url", ["mysql://pos@db/pos", "oracle+oracledb://pos@db/pos", "mssql+pyodbc://pos@dsn"]
)
def test_create_app_refuses_a_database_other_than_sqlite_or_postgresql(tmp_path, url):
    with pytest.raises(UnsupportedDatabase, match=r"SQLite .* or PostgreSQL .* only"):
        create_app({"HOME": str(tmp_path), "SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": url})


@pytest.mark.parametrize(
    "url", ["sqlite://", "postgresql://pos@db/pos", "postgresql+psycopg://pos@db/pos"]
)
def test_create_app_takes_sqlite_and_postgresql(tmp_path, url):
    settings = {"HOME": str(tmp_path), "SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": url}
    assert create_app(settings).config["SQLALCHEMY_DATABASE_URI"] == url

"""Settings: defaults, then $INTEGRITY_POS_HOME/config.toml, then the environment."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ENV_PREFIX = "INTEGRITY_POS_"

DEFAULTS: dict[str, Any] = {
    "TIMEZONE": "Asia/Shanghai",
    "BABEL_DEFAULT_LOCALE": "zh_CN",
    "LANGUAGES": ["zh_CN", "en"],
    # A bearer token is a day's work at the counter plus slack.
    "TOKEN_TTL_HOURS": 24,
    "AWARD_MAX_POINTS": 10_000,
    "IMPORT_MAX_ROWS": 5_000,
    # Points the county keeps back for a household's home shop node to spend while its
    # line is down (ledger.SpendMode); other shops spend only what lies beyond.
    "OFFLINE_ALLOWANCE_POINTS": 200,
    # How long a shop node may sell by itself after it last reached the county.
    "OFFLINE_MAX_HOURS": 72,
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
    # Declaration photos: a folder (default $HOME/photos, resolved when used, so a test's
    # HOME holds its own). Uploads to the declaration intake may be 3 x 10 MB.
    "PHOTO_DIR": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
    "API_TITLE": "Integrity Supermarket POS",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
}

# Environment values that are not strings.
_INT_KEYS = {
    "TOKEN_TTL_HOURS",
    "AWARD_MAX_POINTS",
    "IMPORT_MAX_ROWS",
    "MAX_CONTENT_LENGTH",
    "OFFLINE_ALLOWANCE_POINTS",
    "OFFLINE_MAX_HOURS",
}

SECRET_FILES = {"SECRET_KEY": "secret_key", "CARD_SIGNING_KEY": "card_signing_key"}


def instance_home(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get(ENV_PREFIX + "HOME", "instance")).resolve()


def normalize_database_url(url: str) -> str:
    """Send every PostgreSQL URL through psycopg 3, whatever spelling the operator used."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class SettingsError(ValueError):
    """A setting the app cannot start with; the message names it."""


def _whole_number(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{key} must be a whole number, not {value!r}") from None


def load_settings(
    home: Path | None = None, environ: dict[str, str] | None = None
) -> dict[str, Any]:
    """Merge the three layers into one flat dict of Flask config keys."""
    environ = dict(os.environ if environ is None else environ)
    home = home or instance_home(environ)
    settings = dict(DEFAULTS)
    settings["HOME"] = str(home)
    settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{home / 'integrity.db'}"

    config_file = home / "config.toml"
    if config_file.exists():
        with config_file.open("rb") as fh:
            settings.update({k.upper(): v for k, v in tomllib.load(fh).items()})
        # Resolve the file's database_url now, so the environment below can override it.
        if "DATABASE_URL" in settings:
            settings["SQLALCHEMY_DATABASE_URI"] = settings.pop("DATABASE_URL")

    if "DATABASE_URL" in environ:
        settings["SQLALCHEMY_DATABASE_URI"] = environ["DATABASE_URL"]
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "HOME":
            name = key[len(ENV_PREFIX) :]
            settings[name] = _whole_number(key, value) if name in _INT_KEYS else value
    if "DATABASE_URL" in settings:
        settings["SQLALCHEMY_DATABASE_URI"] = settings.pop("DATABASE_URL")
    settings["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        settings["SQLALCHEMY_DATABASE_URI"]
    )
    return settings


def ensure_secrets(home: Path) -> dict[str, str]:
    """Create the instance secrets on first use (mode 0600) and return them."""
    home.mkdir(parents=True, exist_ok=True)
    values = {}
    for key, filename in SECRET_FILES.items():
        path = home / filename
        if not path.exists():
            # Write a private temporary file, then link it into place: the key appears whole
            # or not at all, and of two processes starting together only one key wins.
            fd, tmp = tempfile.mkstemp(dir=home, prefix=f".{filename}.")
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        values[key] = path.read_text().strip()
    return values

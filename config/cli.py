"""The `integrity-pos` command: Flask's CLI over create_app, plus our own commands."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, NoAppException, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select

from accounts.auth import Role, User, create_user, issue_token
from audit.log import record_event
from config.app import create_app
from config.settings import SettingsError, ensure_secrets
from core.db import db, utcnow
from core.dialects import UnsupportedDatabase
from core.errors import DomainError


def _create_app_or_refuse() -> Flask:
    # A setting the app cannot start with is the operator's to fix: one plain line and a
    # non-zero exit, not a traceback. NoAppException is the one error Flask's CLI shows
    # that way everywhere, `--help` included.
    try:
        return create_app()
    except (SettingsError, UnsupportedDatabase) as exc:
        raise NoAppException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_create_app_or_refuse, add_version_option=False)
def main() -> None:
    """Integrity Supermarket POS."""


def _cli_actor() -> str:
    # Who ran the command, as the operating system knows them: the audit log's "who".
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@main.command("init-db")
@with_appcontext
def init_db() -> None:
    """Migrate the database to head and create the system accounts (safe to repeat)."""
    from ledger.services import ensure_system_accounts

    ensure_secrets(Path(current_app.config["HOME"]))
    upgrade()
    ensure_system_accounts(db.session)
    db.session.commit()
    click.echo("Database is at the latest revision.")


@main.command("unlock-user")
@click.argument("username")
@with_appcontext
def unlock_user_command(username: str) -> None:
    """Lift the lockout after too many wrong passwords, before it ends by itself."""
    from accounts.auth import unlock_user

    try:
        unlock_user(db.session, username)
    except DomainError as exc:
        _fail(str(exc.detail or exc.title))
    record_event(
        db.session, actor=_cli_actor(), action="cli.unlock-user", detail={"username": username}
    )
    db.session.commit()
    click.echo(f"{username} may sign in again.")


@main.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path) -> None:
    """Write the database, the secrets and the photos to one archive; safe while selling."""
    from config.backup import BackupError, backup_instance
    from declarations.storage import photo_store_from_config

    try:
        manifest = backup_instance(
            database_url=current_app.config["SQLALCHEMY_DATABASE_URI"],
            home=Path(current_app.config["HOME"]),
            target=path,
            now=utcnow(),
            photo_dir=photo_store_from_config(current_app.config).root,
        )
    except BackupError as exc:
        _fail(str(exc))
    else:
        revision = manifest.alembic_revision or "-"
        click.echo(f"Backup written to {path} ({manifest.backend}, schema {revision}).")


@main.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds a ledger.")
@with_appcontext
def restore_command(path: Path, force: bool) -> None:
    """Restore a backup into this instance, bring it to this program's schema, verify it."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from config.backup import BackupError, restore_instance
    from declarations.storage import photo_store_from_config
    from ledger.services import verify_ledger

    config = Config()
    config.set_main_option("script_location", current_app.extensions["migrate"].directory)
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    # The restore replaces the database under this process: no pooled connection may linger.
    db.session.remove()
    db.engine.dispose()
    try:
        manifest = restore_instance(
            archive=path,
            database_url=current_app.config["SQLALCHEMY_DATABASE_URI"],
            home=Path(current_app.config["HOME"]),
            known_revisions=known,
            force=force,
            photo_dir=photo_store_from_config(current_app.config).root,
        )
    except BackupError as exc:
        _fail(str(exc))
        return
    if manifest.alembic_revision:
        upgrade()
    report = verify_ledger(db.session)
    db.session.rollback()
    click.echo(f"Restored the backup of {manifest.created_at}.")
    click.echo(f"Ledger verified: {report.transfers_checked} transfers checked.")
    if not report.ok:
        for problem in report.problems:
            click.echo(f"  {problem}", err=True)
        _fail("the restored ledger does not verify")


@main.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--shop", "shop_code", help="Shop code (managers and clerks).")
@click.option("--village", "village_code", help="Village code (cadres and reporters).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def create_user_command(
    username: str, role: str, shop_code: str | None, village_code: str | None, password: str
) -> None:
    """Create a user who can sign in."""
    from inventory.services import get_shop
    from ledger.services import get_village

    try:
        if shop_code:
            get_shop(db.session, shop_code)
        if village_code:
            get_village(db.session, village_code)
        user = create_user(
            db.session,
            username=username,
            password=password,
            role=role,
            shop_code=shop_code,
            village_code=village_code,
        )
    except DomainError as exc:
        _fail(str(exc.detail))
    record_event(
        db.session,
        actor=_cli_actor(),
        action="cli.create-user",
        detail={"username": username, "role": role, "shop": shop_code, "village": village_code},
    )
    db.session.commit()
    click.echo(f"Created {user.role} {user.username}.")


@main.command("create-token")
@click.argument("username")
@click.option("--hours", type=click.IntRange(1, 24 * 366), help="Lifetime (default: settings).")
@with_appcontext
def create_token_command(username: str, hours: int | None) -> None:
    """Print a new bearer token for USERNAME."""
    from datetime import timedelta

    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        _fail(f"no active user {username}")
    ttl = timedelta(hours=hours or current_app.config["TOKEN_TTL_HOURS"])
    token, _row = issue_token(db.session, user, now=utcnow(), ttl=ttl)
    record_event(
        db.session, actor=_cli_actor(), action="cli.create-token", detail={"username": username}
    )
    db.session.commit()
    click.echo(token)


@main.command("seed-demo")
@click.option("--skip-if-seeded", is_flag=True, help="Exit quietly if demo data is there.")
@with_appcontext
def seed_demo_command(skip_if_seeded: bool) -> None:
    """Fill an empty database with a believable demo county."""
    from config.demo import AlreadySeeded, seed_demo
    from member_cards.signing import keyring_from_config

    try:
        summary = seed_demo(
            db.session, now=utcnow(), keyring=keyring_from_config(current_app.config)
        )
    except (AlreadySeeded, DomainError):
        # DomainError: no villages yet, but a demo name is taken (say, a user "admin"
        # made with create-user); that is a database with data too, not a crash.
        db.session.rollback()
        if skip_if_seeded:
            click.echo("Demo data is already there.")
            return
        _fail("this database already has data; seed-demo runs only once")
    db.session.commit()
    click.echo(summary)


# No app in the parent: each worker builds its own after the fork.
@main.command("serve", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=click.IntRange(1, 65535), show_default=True)
@click.option("--threads", default=8, type=click.IntRange(1, 64), show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes sharing the socket (default: one per core, at most 2; 1 on Windows).",
)
def serve(host: str, port: int, threads: int, workers: int | None) -> None:
    """Serve the app: gunicorn on Linux, waitress in one process on Windows."""
    from config import serving

    try:
        serving.check_settings()
    except (SettingsError, UnsupportedDatabase) as exc:
        raise click.ClickException(str(exc)) from None
    workers = workers or serving.default_workers()
    click.echo(f"Serving on http://{host}:{port} ({workers} x {threads} threads)")
    make_app = serving.app_factory(create_app, threads)
    sys.exit(serving.serve(make_app, host=host, port=port, threads=threads, workers=workers))


def _register_domain_commands() -> None:
    from county.cli import county_group
    from inventory.cli import inventory
    from ledger.cli import ledger
    from member_cards.cli import cards
    from nodes.cli import register_node_command
    from nodes.local.cli import shop_node
    from printing.cli import print_agent

    for group in (ledger, inventory, cards, county_group):
        main.add_command(group)
    main.add_command(print_agent)
    main.add_command(register_node_command)
    main.add_command(shop_node)


_register_domain_commands()

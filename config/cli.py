"""The `integrity-pos` command: Flask's CLI over create_app, plus our own commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select

from config.app import create_app
from config.auth import Role, User, create_user, issue_token
from config.db import db, utcnow
from config.errors import DomainError
from config.settings import ensure_secrets


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Integrity Supermarket POS."""


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


@main.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--shop", "shop_code", help="Shop code (managers and clerks).")
@click.option("--village", "village_code", help="Village code (cadres).")
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


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=click.IntRange(1, 65535), show_default=True)
@click.option("--threads", default=8, type=click.IntRange(1, 64), show_default=True)
def serve(host: str, port: int, threads: int) -> None:
    """Serve the app with waitress (production WSGI server, also on Windows)."""
    import waitress

    app = create_app()
    click.echo(f"Serving on http://{host}:{port}")
    waitress.serve(app, host=host, port=port, threads=threads, ident="integrity-pos")


def _register_domain_commands() -> None:
    from inventory.cli import inventory
    from ledger.cli import ledger
    from member_cards.cli import cards

    for group in (ledger, inventory, cards):
        main.add_command(group)


_register_domain_commands()

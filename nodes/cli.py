"""Shop node commands: `integrity-pos register-node --shop CODE --username NAME`."""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta

import click
from flask.cli import with_appcontext

from audit.log import record_event
from core.db import db, utcnow
from core.errors import DomainError
from nodes.services import register_node


def _cli_actor() -> str:
    # As config.cli names whoever ran a command: the operating system's user.
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@click.command("register-node")
@click.option("--shop", "shop_code", required=True, help="The shop the node runs.")
@click.option("--username", required=True, help="A new user for the node (role shop_node).")
@click.option(
    "--hours",
    type=click.IntRange(1, 24 * 366),
    default=24 * 366,
    show_default=True,
    help="Lifetime of the node's token.",
)
@with_appcontext
def register_node_command(shop_code: str, username: str, hours: int) -> None:
    """Register the shop's node: its shop_node user, its chain; print its token."""
    try:
        node, token = register_node(
            db.session,
            now=utcnow(),
            shop_code=shop_code,
            username=username,
            token_ttl=timedelta(hours=hours),
        )
    except DomainError as exc:
        click.echo(f"Error: {exc.detail or exc.title}", err=True)
        sys.exit(1)
    record_event(
        db.session,
        actor=_cli_actor(),
        action="cli.register-node",
        detail={"shop": node.shop.code, "username": username},
    )
    db.session.commit()
    click.echo(token)

"""Ledger commands: `integrity-pos ledger verify`."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from core.db import db
from ledger.services import verify_ledger


@click.group()
def ledger() -> None:
    """The points ledger."""


@ledger.command("verify")
@with_appcontext
def verify() -> None:
    """Recompute the hash chain and every cached balance; exit 1 if anything is off."""
    report = verify_ledger(db.session)
    click.echo(f"transfers checked: {report.transfers_checked}")
    click.echo(f"offline sales of shop nodes checked: {report.node_sales_checked}")
    for problem in report.problems:
        click.echo(f"  {problem}")
    if report.ok:
        click.echo("ok: the chain and every balance agree")
        return
    where = report.first_bad_id if report.first_bad_id is not None else "none left to name"
    click.echo(f"FAILED: first bad transfer: {where}")
    if report.first_bad_node_sale is not None:
        bad = report.first_bad_node_sale
        click.echo(f"FAILED: first bad offline sale: shop {bad['shop_code']} seq {bad['seq']}")
    sys.exit(1)

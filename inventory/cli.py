"""Inventory commands: `integrity-pos inventory reconcile` and `inventory labels`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from accounts.auth import Role, User
from core.db import db
from core.errors import DomainError
from inventory import labels, services
from inventory.api import font_path, label_for


@click.group()
def inventory() -> None:
    """Goods and stock."""


def _office() -> User:
    # The CLI runs on the server with the county office's rights over every shop.
    return User(username="cli", role=Role.ADMIN)


@inventory.command("reconcile")
@click.argument("shop_codes", nargs=-1)
@with_appcontext
def reconcile(shop_codes: tuple[str, ...]) -> None:
    """Recompute on-hand from the journal for SHOP_CODES (default: all); exit 1 on a difference."""
    codes = shop_codes or [s.code for s in services.list_shops(db.session)]
    clean = True
    for code in codes:
        try:
            report = services.reconcile_stock(db.session, actor=_office(), shop_code=code)
        except DomainError as exc:
            click.echo(f"{code}: {exc.detail}", err=True)
            sys.exit(1)
        click.echo(f"{code}: {report.products_checked} products checked")
        for d in report.differences:
            click.echo(f"  {d.sku} {d.name}: cached {d.cached}, journal {d.journal}")
        clean = clean and report.ok
    if not clean:
        click.echo("FAILED: cached on-hand disagrees with the journal")
        sys.exit(1)
    click.echo("ok: every on-hand figure agrees with its movements")


@inventory.command("labels")
@click.argument("skus", nargs=-1, required=True)
@click.option("--copies", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def label_sheet(skus: tuple[str, ...], copies: int, out: Path) -> None:
    """Write an A4 PDF of shelf labels for SKUS."""
    try:
        products = services.products_in_order(db.session, list(skus))
        sheet = [label_for(p) for p in products for _copy in range(copies)]
        out.write_bytes(labels.render_label_sheet(sheet, font_path=font_path()))
    except (DomainError, labels.MissingFont) as exc:
        click.echo(f"Error: {getattr(exc, 'detail', None) or exc}", err=True)
        sys.exit(1)
    click.echo(f"{len(sheet)} labels written to {out} (font: {font_path()})")

"""Inventory commands."""

from __future__ import annotations

import click


@click.group()
def inventory() -> None:
    """Goods and stock."""

"""Member card commands."""

from __future__ import annotations

import click


@click.group()
def cards() -> None:
    """Member cards."""

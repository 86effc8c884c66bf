"""Member card commands: `integrity-pos cards sheet`, `cards keys`, `cards new-key`."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from core import fonts
from core.db import db
from core.errors import DomainError
from ledger import services as ledger
from member_cards import services, sheets, signing


@click.group()
def cards() -> None:
    """Member cards."""


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@cards.command("sheet")
@click.option("--village", "village_code", help="Every working card of this village.")
@click.option("--household", "household_id", type=int, help="This household's working card.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def sheet(village_code: str | None, household_id: int | None, output: Path) -> None:
    """Write an A4 PDF card sheet (ten cards a page) for a village or one household."""
    if (village_code is None) == (household_id is None):
        _fail("give either --village or --household")
    try:
        if village_code is not None:
            village = ledger.get_village(db.session, village_code)
            found = services.active_cards_of_village(db.session, village)
            title = village.name
        else:
            assert household_id is not None
            card = services.active_card(db.session, household_id)
            if card is None:
                _fail(f"household {household_id} has no working card")
            assert card is not None
            found, title = [card], card.serial
        font = fonts.find_cjk_font(current_app.config.get("CJK_FONT_PATH"))
        faces = services.card_faces(found, signing.keyring_from_config(current_app.config))
        output.write_bytes(sheets.render_sheet(faces, font_path=font, title=title))
        short = sheets.shortfalls(faces, font_path=font)
    except DomainError as exc:
        _fail(str(exc.detail or exc.title))
    click.echo(_("Wrote %(count)s cards to %(path)s.", count=len(found), path=output))
    if short:
        # Printed all the same: one rare character must not hold back a whole village.
        click.echo(
            _(
                "Warning: no installed font has some characters of these %(count)s cards; "
                "they are printed as their codes (such as [U+4DAE]) for you to write in "
                "by hand:",
                count=len(short),
            ),
            err=True,
        )
        for item in short:
            card = found[item.index]
            click.echo(
                _(
                    "  household %(household_id)s, card %(serial)s, head %(name)s: %(chars)s",
                    household_id=card.household_id,
                    serial=item.face.serial,
                    name=item.face.head_name,
                    chars=" ".join(f"{c} {fonts.placeholder(c)}" for c in item.missing),
                ),
                err=True,
            )


@cards.command("keys")
@with_appcontext
def keys() -> None:
    """List the card signing key ids: the one that signs, and those still accepted."""
    try:
        keyring = signing.keyring_from_config(current_app.config)
    except signing.KeyringError as exc:
        _fail(str(exc))
    for key_id in sorted(keyring.secrets):
        mark = "signs new cards" if key_id == keyring.current_id else "accepted"
        click.echo(f"{key_id}\t{mark}")


@cards.command("new-key")
def new_key() -> None:
    """Print a fresh random secret for a new card signing key (for config.toml)."""
    click.echo(secrets.token_hex(32))

"""Commands of printing: the shop's print agent (needs neither the app nor a database)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from printing.agent import default_state_dir, main
from printing.devices import parse_spec


@click.command("print-agent")
@click.option("--server", required=True, help="The central server, e.g. https://pos.example.cn")
@click.option(
    "--token",
    envvar="INTEGRITY_POS_AGENT_TOKEN",
    required=True,
    help="A bearer token of the shop's print_agent user (or $INTEGRITY_POS_AGENT_TOKEN).",
)
@click.option(
    "--printer",
    help="network:HOST[:PORT], usb:VID:PID[:IN:OUT], serial:DEV[:BAUD], file:PATH, "
    "win32:NAME, cups:NAME or lp:NAME; default: the shop's printer as set up on the server.",
)
@click.option("--shop", help="Shop code (default: the token's shop).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_state_dir,
    show_default="per-user state folder",
    help="Where the journal of printed jobs is kept.",
)
@click.option("--wait", default=25, type=click.IntRange(1, 60), show_default=True)
@click.option("--printer-timeout", default=5.0, type=click.FloatRange(0.1, 120), show_default=True)
def print_agent(
    server: str,
    token: str,
    printer: str | None,
    shop: str | None,
    state_dir: Path,
    wait: int,
    printer_timeout: float,
) -> None:
    """Print the shop's receipts on this PC's printer, fetched from the server."""
    if printer:
        try:
            parse_spec(printer)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--printer") from exc
    sys.exit(
        main(
            server=server,
            token=token,
            printer=printer,
            shop=shop,
            state_dir=state_dir,
            wait=wait,
            printer_timeout=printer_timeout,
        )
    )

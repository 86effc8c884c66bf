"""`integrity-pos shop-node`: the shop's counter PC, selling through a lost line (API.md)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from printing.agent import default_state_dir as agent_state_dir
from printing.devices import parse_spec


def default_state_dir() -> Path:
    """The node's folder beside the print agent's: its outbox lives there."""
    return agent_state_dir("shop-node")


@click.command("shop-node")
@click.option("--server", required=True, help="The county server, e.g. https://pos.example.cn")
@click.option(
    "--token",
    envvar="INTEGRITY_POS_NODE_TOKEN",
    required=True,
    help="The token `register-node` printed (or $INTEGRITY_POS_NODE_TOKEN).",
)
@click.option("--shop", "shop_code", required=True, help="The shop this PC sells for.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=click.IntRange(1, 65535), show_default=True)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_state_dir,
    show_default="per-user state folder",
    help="The node's own database (its outbox of offline sales) and print journal.",
)
@click.option(
    "--printer",
    help="The shop's receipt printer (as for print-agent: network:HOST[:PORT], usb:..., "
    "file:PATH ...); default: as set up on the county server.",
)
@click.option("--threads", default=8, type=click.IntRange(2, 64), show_default=True)
def shop_node(
    server: str,
    token: str,
    shop_code: str,
    host: str,
    port: int,
    state_dir: Path,
    printer: str | None,
    threads: int,
) -> None:
    """Serve the shop's counters: through the county while it answers, by itself when not."""
    if printer:
        try:
            parse_spec(printer)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--printer") from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    node = build_node(
        server=server, token=token, shop_code=shop_code, state_dir=state_dir, printer=printer
    )
    node.start()
    import waitress

    click.echo(f"shop node for {node.shop_code} on http://{host}:{port}/ (county: {server})")
    try:
        waitress.serve(node.gateway, host=host, port=port, threads=threads, ident="integrity-pos")
    finally:
        node.stop()
    sys.exit(0)


class ShopNode:
    """The node's parts, started and stopped together."""

    def __init__(self, *, shop_code: str, gateway: object, syncer: object, printer: object) -> None:
        self.shop_code = shop_code
        self.gateway = gateway
        self.syncer = syncer
        self.printer = printer

    def start(self) -> None:
        # One round before serving: a node that starts with the line up sells online from
        # its first request; one that starts offline still serves from what it has.
        try:
            self.syncer.run_once()  # type: ignore[attr-defined]
        except Exception:  # a first round that fails is what the loop retries
            logging.getLogger(__name__).exception("first sync round failed")
        self.syncer.start()  # type: ignore[attr-defined]
        if self.printer is not None:
            self.printer.start()  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.syncer.stop()  # type: ignore[attr-defined]
        if self.printer is not None:
            self.printer.stop()  # type: ignore[attr-defined]


def build_node(
    *, server: str, token: str, shop_code: str, state_dir: Path, printer: str | None
) -> ShopNode:
    """Every part of a node over `state_dir`; nothing started yet."""
    from nodes.local import clock as node_clock
    from nodes.local.app import create_local_app
    from nodes.local.gateway import Gateway
    from nodes.local.printer import NodePrinter
    from nodes.local.store import open_store
    from nodes.local.sync import Syncer
    from printing.agent import SingleInstance

    shop_code = shop_code.strip().upper()
    state_dir = state_dir.resolve()
    # Two nodes on one folder would take the same sequence numbers: the chain would fork.
    SingleInstance(state_dir)
    store = open_store(state_dir)
    syncer = Syncer(
        store, server_url=server, token=token, shop_code=shop_code, clock=node_clock.now
    )
    app = create_local_app(
        database_url=store.url, home=state_dir, shop_code=shop_code, syncer=syncer
    )
    gateway = Gateway(
        app,
        upstream=server,
        node_token=token,
        syncer=syncer,
        node=app.extensions["shop_node"],
    )
    # Without a printer of its own the node prints nothing offline; the county's jobs
    # are then a print agent's (or a network printer's) as before.
    spooler = (
        NodePrinter(
            store,
            printer,
            server_url=server,
            token=token,
            shop_code=shop_code,
            state_dir=state_dir,
            app=app,
        )
        if printer
        else None
    )
    return ShopNode(shop_code=shop_code, gateway=gateway, syncer=syncer, printer=spooler)

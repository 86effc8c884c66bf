"""Offline receipts printed by the node itself: once each, and never holding up a sale."""

from __future__ import annotations

from pathlib import Path

from nodes.local import offline
from nodes.local.app import create_local_app
from nodes.local.models import PrintQueueItem
from nodes.local.printer import NodePrinter, print_state
from nodes.local.store import Store
from tests.nodes.local.conftest import NOW, payload


def sell(store: Store, key: str) -> int:
    with store.session() as session:
        answer = offline.sell_offline(
            session,
            username="clerk-gjy",
            shop_code="GJY",
            lines=[{"sku": "SOAP", "qty": 1}],
            idempotency_key=key,
            card_payload=payload(7),
            now=NOW,
        )
    return int(answer["sale_id"])


def test_a_receipt_prints_once_and_waits_for_a_printer_that_is_off(
    store: Store, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir" / "lp0"
    printer = NodePrinter(store, f"file:{missing}", run_agent=False)
    sale_id = sell(store, "k1")
    # The printer is off: the sale stands, its receipt waits.
    assert printer.print_pending() is False
    with store.session() as session:
        state = print_state(session, sale_id)
    assert state["state"] == "queued" and state["error_code"]
    assert state["attempts"] == 1

    device = tmp_path / "lp0"
    device.touch()
    printer = NodePrinter(store, f"file:{device}", run_agent=False)
    assert printer.print_pending() is True
    assert printer.print_pending() is True
    printed = device.read_bytes()
    assert printed and printed.count(b"\x1d\x56") == 1  # one cut: one receipt
    with store.session() as session:
        assert print_state(session, sale_id)["state"] == "printed"


def test_a_receipt_caught_sending_by_a_crash_is_not_printed_again(
    store: Store, tmp_path: Path
) -> None:
    device = tmp_path / "lp0"
    device.touch()
    NodePrinter(store, f"file:{device}", run_agent=False)
    sale_id = sell(store, "k1")
    with store.session() as session:
        item = session.query(PrintQueueItem).one()
        item.status = "sending"
    printer = NodePrinter(store, f"file:{device}", run_agent=False)
    assert printer.print_pending() is True
    assert device.read_bytes() == b""
    with store.session() as session:
        assert print_state(session, sale_id)["state"] == "failed"


def test_sales_before_a_printer_was_set_up_are_not_queued(store: Store) -> None:
    sale_id = sell(store, "k1")
    with store.session() as session:
        assert print_state(session, sale_id)["state"] == "no_printer"


def test_the_node_prints_its_receipts_in_chinese(store: Store, tmp_path: Path) -> None:
    # As shop-node builds it: the local app's catalogues, whatever thread prints.
    app = create_local_app(
        database_url=store.url, home=tmp_path / "home", shop_code="GJY", syncer=None
    )
    device = tmp_path / "lp0"
    device.touch()
    printer = NodePrinter(store, f"file:{device}", run_agent=False, app=app)
    sell(store, "k-zh")
    assert printer.print_pending() is True
    printed = device.read_bytes()
    # The printer's Chinese mode takes GBK: the label and the words around it.
    assert "离线销售".encode("gbk") in printed
    assert "小票号".encode("gbk") in printed
    assert b"Offline sale" not in printed and b"Receipt No." not in printed

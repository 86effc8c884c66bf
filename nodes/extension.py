"""The shop nodes' part in the app: their chains are checked whenever the ledger is.

config.app's create_app calls `init_app`; nothing here runs at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Flask, current_app
from sqlalchemy.orm import Session

from ledger.signals import verifying
from nodes.services import list_exceptions, list_nodes, verify_node_chains


def init_app(app: Flask) -> None:
    # A plain function connects once however many apps the process builds (the tests).
    verifying.connect(_verify_nodes)
    # The office's printers page lists the nodes; printing does not import this package.
    app.extensions["shop_node_overview"] = _overview


def _overview(session: Session, actor: Any) -> tuple[list[Any], Sequence[Any]]:
    cap = current_app.config["OFFLINE_ALLOWANCE_POINTS"]
    return (
        list_nodes(session, actor=actor, allowance_cap=cap),
        list_exceptions(session, actor=actor),
    )


def _verify_nodes(session: Session, *, report: Any) -> None:
    found = verify_node_chains(session)
    report.node_sales_checked = found.sales_checked
    if not found.ok:
        report.ok = False
        report.problems.extend(found.problems)
        report.first_bad_node_sale = found.first_bad

"""The shop nodes' part in the app: their chains are checked whenever the ledger is.

config.app's create_app calls `init_app`; nothing here runs at import.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from ledger.signals import verifying
from nodes.services import verify_node_chains


def init_app(app: Flask) -> None:
    # A plain function connects once however many apps the process builds (the tests).
    verifying.connect(_verify_nodes)


def _verify_nodes(session: Session, *, report: Any) -> None:
    found = verify_node_chains(session)
    report.node_sales_checked = found.sales_checked
    if not found.ok:
        report.ok = False
        report.problems.extend(found.problems)
        report.first_bad_node_sale = found.first_bad

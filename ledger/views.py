"""HTML pages of the ledger for the county office and village cadres."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from config.auth import Role, page_roles_required

bp = Blueprint("ledger", __name__)

OFFICE = (Role.ADMIN, Role.CADRE)


@bp.route("/households")
@page_roles_required(*OFFICE)
def households() -> Any:
    return render_template("ledger/households.html")

"""HTML pages of inventory for shop managers and the county office."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("inventory", __name__)

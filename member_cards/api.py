"""JSON API of member cards: issue, revoke, resolve, QR images."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("cards_api", __name__, url_prefix="/api/v1", description="Member cards")

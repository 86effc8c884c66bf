"""JSON API of inventory: shops, the catalogue, stock and its movements."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("inventory_api", __name__, url_prefix="/api/v1", description="Shops, goods, stock")

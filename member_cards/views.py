"""HTML pages of member cards, and the villagers' public balance page."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("member_cards", __name__)

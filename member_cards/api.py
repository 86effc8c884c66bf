"""JSON API of member cards: issue, revoke, resolve, QR images."""

from __future__ import annotations

import io
from typing import Any

from flask import current_app, send_file

from accounts.auth import Role, api_actor, roles_required
from core.api import Blueprint
from core.db import db, transactional, utcnow
from member_cards import schemas as s
from member_cards import services, sheets, signing

blp = Blueprint("cards_api", __name__, url_prefix="/api/v1", description="Member cards")

OFFICE = (Role.ADMIN, Role.CADRE)
# Clerks and managers resolve at the counter; office staff scan cards too.
ANY_ROLE: tuple[Role, ...] = ()


def _keyring() -> signing.Keyring:
    return signing.keyring_from_config(current_app.config)


def _issued(card: Any) -> dict[str, Any]:
    return {
        "card_id": card.id,
        "serial": card.serial,
        "payload": services.card_payload(card, _keyring()),
    }


@blp.route("/households/<id:household_id>/cards", methods=["POST"])
@roles_required(*OFFICE)
@blp.response(201, s.IssuedCardOut)
@transactional()
def issue_card(household_id: int) -> Any:
    """Issue a new card; the household's earlier active card stops working."""
    card = services.issue_card(
        db.session, actor=api_actor(), now=utcnow(), household_id=household_id
    )
    return _issued(card)


@blp.route("/households/<id:household_id>/cards", methods=["GET"])
@roles_required(*OFFICE)
@blp.response(200, s.CardList)
def list_cards(household_id: int) -> Any:
    """Every card the household has had, newest first, with status and history."""
    cards = services.list_household_cards(db.session, actor=api_actor(), household_id=household_id)
    return {"household_id": household_id, "cards": cards}


@blp.route("/cards/<id:card_id>/revoke", methods=["POST"])
@roles_required(*OFFICE)
@blp.arguments(s.RevokeIn)
@blp.response(200, s.CardOut)
@transactional()
def revoke_card(data: dict[str, Any], card_id: int) -> Any:
    """A lost or stolen card stops working at once."""
    return services.revoke_card(
        db.session, actor=api_actor(), now=utcnow(), card_id=card_id, reason=data["reason"]
    )


@blp.route("/cards/<id:card_id>/reprint", methods=["POST"])
@roles_required(*OFFICE)
@blp.response(200, s.IssuedCardOut)
@transactional()
def reprint_card(card_id: int) -> Any:
    """Record another print of a working card (same serial) and give its payload."""
    card = services.reprint_card(db.session, actor=api_actor(), now=utcnow(), card_id=card_id)
    return _issued(card)


@blp.route("/cards/<id:card_id>/qr.png", methods=["GET"])
@roles_required(*OFFICE)
@blp.doc(
    responses={
        "200": {
            "description": "The card's QR code",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
)
def card_qr(card_id: int) -> Any:
    """The QR image of a working card (error correction Q, quiet zone of 4 modules)."""
    card = services.printable_card(db.session, actor=api_actor(), card_id=card_id)
    response = send_file(
        io.BytesIO(sheets.qr_png(services.card_payload(card, _keyring()))),
        mimetype="image/png",
        download_name=f"card-{card.serial}.png",
    )
    # The image is a working card: no shared cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/cards/resolve", methods=["POST"])
@roles_required(*ANY_ROLE)
@blp.arguments(s.ResolveIn)
@blp.response(200, s.ResolveOut)
def resolve_card(data: dict[str, Any]) -> Any:
    """The household behind a scanned card (422 invalid_card, 404 unknown, 410 revoked)."""
    card = services.resolve_card(db.session, payload=data["payload"], keyring=_keyring())
    return {"household": card.household, "card": card}

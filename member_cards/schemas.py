"""Request and response schemas of the member cards API; the OpenAPI document is built from them."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from core.api import BaseSchema, LocalDateTime
from ledger.schemas import MemberSchema
from member_cards.services import MAX_REASON_CHARS, integrity_score


class IssuedCardOut(BaseSchema):
    card_id = fields.Integer()
    serial = fields.String()
    payload = fields.String(metadata={"description": "Exactly the text in the card's QR code"})


class CardEventOut(BaseSchema):
    kind = fields.String(metadata={"description": "issued, revoked, replaced or reprinted"})
    at = LocalDateTime()
    by = fields.Function(lambda e: e.actor.username if e.actor else None, allow_none=True)
    reason = fields.String(allow_none=True)


class CardOut(BaseSchema):
    card_id = fields.Integer(attribute="id")
    serial = fields.String()
    household_id = fields.Integer()
    status = fields.String(metadata={"description": "active, revoked or replaced"})
    issued_at = LocalDateTime()
    ended_at = LocalDateTime(allow_none=True)
    revoke_reason = fields.String(allow_none=True)
    replaced_by = fields.Function(
        lambda c: c.replaced_by.serial if c.replaced_by else None, allow_none=True
    )
    events = fields.List(fields.Nested(CardEventOut))


class CardList(BaseSchema):
    household_id = fields.Integer()
    cards = fields.List(fields.Nested(CardOut))


class RevokeIn(BaseSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON_CHARS))


class ResolveIn(ma.Schema):
    """Any text at all is a payload to judge; the signature decides, not the schema.

    Not a BaseSchema: its refusal of NUL and odd code points would turn a scan of binary
    junk into validation_error, where API.md promises invalid_card.
    """

    class Meta:
        unknown = ma.RAISE
        ordered = True

    payload = fields.String(required=True)


class ResolvedHouseholdOut(BaseSchema):
    id = fields.Integer()
    head_name = fields.String()
    members = fields.List(fields.Nested(MemberSchema))
    village_code = fields.String(attribute="village.code")
    balance = fields.Integer(attribute="account.balance")
    integrity_score = fields.Function(integrity_score)
    status = fields.String()


class ResolvedCardOut(BaseSchema):
    card_id = fields.Integer(attribute="id")
    serial = fields.String()
    status = fields.String()


class ResolveOut(BaseSchema):
    household = fields.Nested(ResolvedHouseholdOut)
    card = fields.Nested(ResolvedCardOut)

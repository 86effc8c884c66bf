"""Request and response schemas of the shop node API; the OpenAPI document is built from them."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import fields, validate

from core.api import BaseSchema, LocalDateTime, StrictInt, idempotency_key_field
from core.ids import ID_RANGE
from core.scanned import ScannedString
from pos.schemas import LINES, QTY, SaleOut

# Offline sales of this century only: anything else is a broken clock, not a sale.
MADE_AT = validate.Range(min=datetime(2000, 1, 1, tzinfo=UTC), max=datetime(2100, 1, 1, tzinfo=UTC))
HASH = validate.Regexp(r"^[0-9a-f]{64}$", error="64 lower-case hex digits")


class OfflineLineIn(BaseSchema):
    sku = ScannedString(required=True, validate=validate.Length(min=1, max=32))
    qty = StrictInt(required=True, validate=QTY)


class OfflineSaleIn(BaseSchema):
    seq = StrictInt(required=True, validate=validate.Range(1, 2**31 - 1))
    prev_hash = fields.String(required=True, validate=HASH)
    idempotency_key = idempotency_key_field()
    receipt_no = fields.String(required=True, validate=validate.Length(min=1, max=64))
    made_at = fields.AwareDateTime(required=True, validate=MADE_AT)
    household_id = StrictInt(required=True, validate=ID_RANGE)
    card_digest = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=128)
    )
    lines = fields.List(fields.Nested(OfflineLineIn), required=True, validate=LINES)
    # Optional: the node's own shop, checked against its token.
    shop_code = fields.String(load_default=None, validate=validate.Length(min=1, max=32))


class OfflineSaleOut(SaleOut):
    seq = fields.Integer()
    hash = fields.String()


# A drain's batch: enough to make the round trip and the commit cheap per sale, few
# enough that one request stays well under a second at the county.
BATCH = validate.Length(min=1, max=100)


class OfflineSaleBatchIn(BaseSchema):
    sales = fields.List(fields.Nested(OfflineSaleIn), required=True, validate=BATCH)


class OfflineSaleBatchOut(BaseSchema):
    sales = fields.List(fields.Nested(OfflineSaleOut))
    refused = fields.Dict(
        allow_none=True,
        metadata={"description": "the problem+json of the first sale refused; none after it"},
    )


class NodeOut(BaseSchema):
    shop_code = fields.String(attribute="shop.code")
    last_seq = fields.Integer()
    last_hash = fields.String()
    last_sync_at = LocalDateTime(allow_none=True)
    offline_allowance_points = fields.Integer()


class FeedQuery(BaseSchema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=4000))
    limit = fields.Integer(load_default=2000, validate=validate.Range(1, 5000))


class FeedShopOut(BaseSchema):
    code = fields.String()
    name = fields.String()


class FeedProductOut(BaseSchema):
    sku = fields.String()
    barcode = fields.String(allow_none=True)
    name = fields.String()
    unit = fields.String()
    points_price = fields.Integer()
    active = fields.Boolean()
    allow_negative_stock = fields.Boolean()
    on_hand = fields.Integer()


class FeedHouseholdOut(BaseSchema):
    id = fields.Integer()
    village_code = fields.String()
    village_name = fields.String()
    head_name = fields.String()
    members = fields.List(fields.String())
    active = fields.Boolean()
    floor = fields.Integer()
    balance = fields.Integer()
    allowance = fields.Integer()


class FeedCardOut(BaseSchema):
    digest = fields.String()
    household_id = fields.Integer()
    serial = fields.String()
    active = fields.Boolean()


class FeedUserOut(BaseSchema):
    username = fields.String()
    role = fields.String()
    shop_code = fields.String(allow_none=True)
    active = fields.Boolean()


class FeedOut(BaseSchema):
    cursor = fields.String()
    more = fields.Boolean()
    full = fields.Boolean()
    now = LocalDateTime()
    shop = fields.Nested(FeedShopOut)
    offline_allowance_points = fields.Integer()
    offline_max_hours = fields.Integer()
    products = fields.List(fields.Nested(FeedProductOut))
    households = fields.List(fields.Nested(FeedHouseholdOut))
    cards = fields.List(fields.Nested(FeedCardOut))
    users = fields.List(fields.Nested(FeedUserOut))


class ReportIn(BaseSchema):
    pending_sales = StrictInt(required=True, validate=validate.Range(0, 2**31 - 1))
    offline_since = fields.AwareDateTime(load_default=None, allow_none=True, validate=MADE_AT)
    last_sync_at = fields.AwareDateTime(load_default=None, allow_none=True, validate=MADE_AT)


class ReportOut(BaseSchema):
    shop_code = fields.String(attribute="shop.code")
    pending_sales = fields.Integer()
    offline_since = LocalDateTime(allow_none=True)
    last_sync_at = LocalDateTime(allow_none=True)
    reported_at = LocalDateTime(allow_none=True)

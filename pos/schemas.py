"""Request and response schemas of the counter API; the OpenAPI document is built from them."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from core.api import BaseSchema, LocalDateTime, StrictInt, idempotency_key_field
from core.ids import ID_RANGE
from core.scanned import ScannedString
from pos.services import MAX_LINES, MAX_QUANTITY, MAX_REASON

QTY = validate.Range(1, MAX_QUANTITY)
LINES = validate.Length(min=1, max=MAX_LINES)
REASON = validate.Length(min=1, max=MAX_REASON)


class SaleLineIn(BaseSchema):
    sku = ScannedString(validate=validate.Length(min=1, max=32))
    barcode = ScannedString(validate=validate.Length(min=1, max=20))
    qty = StrictInt(required=True, validate=QTY)

    @ma.validates_schema
    def _one_reference(self, data: dict[str, Any], **_: Any) -> None:
        if ("sku" in data) == ("barcode" in data):
            raise ma.ValidationError(str(_l("give either sku or barcode")), "sku")


class SaleIn(BaseSchema):
    # Any text: the signature decides, and a bad card is invalid_card, not validation_error.
    # Read as a scan is before the request's fingerprint is taken: a retry typed with Caps
    # Lock on is the same sale.
    card_payload = ScannedString(upper=True, validate=validate.Length(min=1, max=1000))
    household_id = StrictInt(validate=ID_RANGE)
    lines = fields.List(fields.Nested(SaleLineIn), required=True, validate=LINES)
    idempotency_key = idempotency_key_field()

    @ma.validates_schema
    def _one_customer(self, data: dict[str, Any], **_: Any) -> None:
        if ("card_payload" in data) == ("household_id" in data):
            raise ma.ValidationError(
                str(_l("give either card_payload or household_id")), "card_payload"
            )


class SaleLineOut(BaseSchema):
    sku = fields.String()
    name = fields.String()
    qty = fields.Integer()
    points_each = fields.Integer()
    points = fields.Integer()


class SaleOut(BaseSchema):
    sale_id = fields.Integer(attribute="id")
    receipt_no = fields.String()
    shop_code = fields.String()
    household_id = fields.Integer()
    total_points = fields.Integer()
    balance_after = fields.Integer()
    lines = fields.List(fields.Nested(SaleLineOut))
    # A sale a shop node made while its line was down (API.md).
    offline = fields.Boolean()


class ReturnLineIn(BaseSchema):
    sku = ScannedString(required=True, validate=validate.Length(min=1, max=32))
    qty = StrictInt(required=True, validate=QTY)


class ReturnIn(BaseSchema):
    lines = fields.List(fields.Nested(ReturnLineIn), required=True, validate=LINES)
    reason = fields.String(required=True, validate=REASON)
    idempotency_key = idempotency_key_field()


class VoidIn(BaseSchema):
    reason = fields.String(required=True, validate=REASON)
    idempotency_key = idempotency_key_field()


class ReturnLineOut(BaseSchema):
    sku = fields.String()
    qty = fields.Integer()
    points = fields.Integer()


class ReturnOut(BaseSchema):
    return_id = fields.Integer(attribute="id")
    sale_id = fields.Integer()
    kind = fields.String()
    reason = fields.String()
    refund_points = fields.Integer()
    balance_after = fields.Integer()
    created_at = LocalDateTime()
    lines = fields.List(fields.Nested(ReturnLineOut))


class SaleDetailOut(SaleOut):
    status = fields.String()
    business_day = fields.Date()
    clerk_id = fields.Integer()
    created_at = LocalDateTime()
    returns = fields.List(fields.Nested(ReturnOut))


class SaleList(BaseSchema):
    sales = fields.List(fields.Nested(SaleDetailOut))


class SaleQuery(BaseSchema):
    receipt_no = ScannedString(upper=True, load_default=None, validate=validate.Length(max=64))
    household_id = fields.Integer(load_default=None, validate=ID_RANGE)
    date = fields.Date(load_default=None)


class CustomerIn(ma.Schema):
    """Any text is a payload to judge (see member_cards.schemas.ResolveIn)."""

    class Meta:
        unknown = ma.RAISE

    card_payload = fields.String(required=True)


class CustomerOut(BaseSchema):
    household_id = fields.Integer()
    head_name = fields.String()
    members = fields.List(fields.String())
    village_name = fields.String()
    balance = fields.Integer()
    floor = fields.Integer()
    spendable = fields.Integer()
    card_serial = fields.String(allow_none=True)
    # Kept back for the village's home shop node: online sales leave floor + reserve_cap.
    reserve_cap = fields.Integer()
    reserved = fields.Integer()
    reserved_for = fields.String(allow_none=True)


class GoodsOut(BaseSchema):
    """A scanned product as the counter needs it, with what this shop holds of it."""

    sku = fields.String()
    barcode = fields.String(allow_none=True)
    name = fields.String()
    unit = fields.String()
    points_price = fields.Integer()
    active = fields.Boolean()
    on_hand = fields.Integer(metadata={"description": "this shop's on-hand; 0 if never stocked"})
    allow_negative_stock = fields.Boolean(
        metadata={"description": "whether this shop may sell below zero on hand"}
    )


class ReportQuery(BaseSchema):
    date = fields.Date(required=True)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class ProductDayOut(BaseSchema):
    sku = fields.String()
    name = fields.String()
    qty_sold = fields.Integer()
    qty_returned = fields.Integer()
    points = fields.Integer()


class ClerkDayOut(BaseSchema):
    clerk_id = fields.Integer()
    username = fields.String()
    sales = fields.Integer()
    points = fields.Integer()


class ReportDifferenceOut(BaseSchema):
    kind = fields.String()
    sale_id = fields.Integer(allow_none=True)
    receipt_no = fields.String(allow_none=True)
    shop_points = fields.Integer()
    ledger_points = fields.Integer()


class DailyReportOut(BaseSchema):
    shop_code = fields.String()
    date = fields.Date(attribute="day")
    sales = fields.Integer()
    voided = fields.Integer()
    offline_sales = fields.Integer()
    points_redeemed = fields.Integer()
    points_refunded = fields.Integer()
    net_points = fields.Integer()
    ledger_redeemed = fields.Integer()
    ledger_refunded = fields.Integer()
    ledger_points = fields.Integer()
    matches_ledger = fields.Boolean()
    by_product = fields.List(fields.Nested(ProductDayOut))
    by_clerk = fields.List(fields.Nested(ClerkDayOut))
    differences = fields.List(fields.Nested(ReportDifferenceOut))


class ReceiptQuery(BaseSchema):
    format = fields.String(
        load_default="text",
        validate=validate.OneOf(["text", "escpos", "png"]),
        metadata={"description": "text: plain text; escpos: the printer's bytes; png: a preview"},
    )
    copy = fields.Boolean(load_default=False, metadata={"description": "a reprint, marked 副本"})
    width = fields.Integer(
        load_default=32,
        validate=validate.OneOf([32, 48]),
        metadata={"description": "format=text: columns, 32 for 58 mm paper, 48 for 80 mm"},
    )
    paper = fields.Integer(
        load_default=58,
        validate=validate.OneOf([58, 80]),
        metadata={"description": "format=escpos|png: paper width in mm"},
    )
    mode = fields.String(
        load_default="text",
        validate=validate.OneOf(["text", "image"]),
        metadata={
            "description": "format=escpos: text (GBK in the printer's Chinese mode, a line "
            "holding characters outside GBK as a raster image in its place) "
            "or image (the receipt as a raster image, for printers without a Chinese font)"
        },
    )

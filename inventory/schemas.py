"""Request and response schemas of the inventory API; the OpenAPI document is built from them."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from core.api import BaseSchema, LocalDateTime, StrictInt, idempotency_key_field
from core.scanned import ScannedString
from inventory.models import AdjustmentReason
from inventory.services import MAX_LINES, MAX_POINTS_PRICE, MAX_QUANTITY, other_shop_of

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$", error="letters, digits, - and _")
NAME = validate.Length(min=1, max=100)
REFERENCE = validate.Length(min=1, max=100)
LINES = validate.Length(min=1, max=MAX_LINES)
QTY = validate.Range(1, MAX_QUANTITY)


class ShopIn(BaseSchema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    allow_negative_stock = fields.Boolean(load_default=False)


class ShopPatch(BaseSchema):
    name = fields.String(validate=NAME)
    allow_negative_stock = fields.Boolean()


class ShopOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    allow_negative_stock = fields.Boolean()


class ShopList(BaseSchema):
    shops = fields.List(fields.Nested(ShopOut))


class ProductIn(BaseSchema):
    sku = ScannedString(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    name_en = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    unit = fields.String(required=True, validate=validate.Length(min=1, max=16))
    points_price = StrictInt(required=True, validate=validate.Range(1, MAX_POINTS_PRICE))
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))
    # Checked (digits, length, check digit, uniqueness) by the service, for pages too.
    barcode = ScannedString(load_default=None, allow_none=True, validate=validate.Length(max=20))
    active = fields.Boolean(load_default=True)


class ProductPatch(BaseSchema):
    name = fields.String(validate=NAME)
    name_en = fields.String(validate=validate.Length(max=100))
    unit = fields.String(validate=validate.Length(min=1, max=16))
    points_price = StrictInt(validate=validate.Range(1, MAX_POINTS_PRICE))
    category = fields.String(validate=validate.Length(max=50))
    barcode = ScannedString(validate=validate.Length(min=1, max=20))
    active = fields.Boolean()


class ProductOut(BaseSchema):
    id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    unit = fields.String()
    points_price = fields.Integer()
    category = fields.String(allow_none=True)
    barcode = fields.String(allow_none=True)
    active = fields.Boolean()


class ProductQuery(BaseSchema):
    q = fields.String(load_default="", validate=validate.Length(max=100))
    category = fields.String(load_default=None, validate=validate.Length(max=50))
    active = fields.Boolean(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10_000_000))


class ProductList(BaseSchema):
    products = fields.List(fields.Nested(ProductOut))
    total = fields.Integer()


class StockQuery(BaseSchema):
    q = fields.String(load_default="", validate=validate.Length(max=100))
    low = fields.Boolean(load_default=False)


class StockItemOut(BaseSchema):
    sku = fields.String(attribute="product.sku")
    name = fields.String(attribute="product.name")
    unit = fields.String(attribute="product.unit")
    barcode = fields.String(attribute="product.barcode", allow_none=True)
    points_price = fields.Integer(attribute="product.points_price")
    on_hand = fields.Integer()
    reorder_level = fields.Integer()
    low = fields.Boolean()
    value_points = fields.Integer()


class StockList(BaseSchema):
    shop_code = fields.String()
    items = fields.List(fields.Nested(StockItemOut))
    total_value_points = fields.Integer()


class QtyLine(BaseSchema):
    sku = ScannedString(required=True, validate=validate.Length(min=1, max=32))
    qty = StrictInt(required=True, validate=QTY)


class ReceiptIn(BaseSchema):
    reference = fields.String(required=True, validate=REFERENCE)
    supplier = fields.String(load_default=None, allow_none=True, validate=NAME)
    lines = fields.List(fields.Nested(QtyLine), required=True, validate=LINES)
    idempotency_key = idempotency_key_field()


class AdjustmentLine(BaseSchema):
    sku = ScannedString(required=True, validate=validate.Length(min=1, max=32))
    delta = StrictInt(required=True, validate=validate.Range(-MAX_QUANTITY, MAX_QUANTITY))
    reason = fields.String(required=True, validate=validate.OneOf(list(AdjustmentReason)))


class AdjustmentIn(BaseSchema):
    reference = fields.String(load_default=None, allow_none=True, validate=REFERENCE)
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    lines = fields.List(fields.Nested(AdjustmentLine), required=True, validate=LINES)
    idempotency_key = idempotency_key_field()


class CountLine(BaseSchema):
    sku = ScannedString(required=True, validate=validate.Length(min=1, max=32))
    counted = StrictInt(required=True, validate=validate.Range(0, MAX_QUANTITY))


class CountIn(BaseSchema):
    reference = fields.String(load_default=None, allow_none=True, validate=REFERENCE)
    lines = fields.List(fields.Nested(CountLine), required=True, validate=LINES)
    idempotency_key = idempotency_key_field()


class TransferIn(BaseSchema):
    to_shop = fields.String(required=True, validate=CODE)
    reference = fields.String(load_default=None, allow_none=True, validate=REFERENCE)
    lines = fields.List(fields.Nested(QtyLine), required=True, validate=LINES)
    idempotency_key = idempotency_key_field()


class ReorderLine(BaseSchema):
    sku = ScannedString(required=True, validate=validate.Length(min=1, max=32))
    reorder_level = StrictInt(required=True, validate=validate.Range(0, MAX_QUANTITY))


class ReorderIn(BaseSchema):
    lines = fields.List(fields.Nested(ReorderLine), required=True, validate=LINES)


class ReorderOut(BaseSchema):
    items = fields.List(fields.Nested(StockItemOut))


class MovementOut(BaseSchema):
    id = fields.Integer()
    at = LocalDateTime(attribute="created_at")
    kind = fields.String()
    shop_code = fields.String(attribute="shop.code")
    sku = fields.String(attribute="product.sku")
    name = fields.String(attribute="product.name")
    quantity = fields.Integer()
    on_hand_after = fields.Integer()
    reference = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    user = fields.Function(lambda m: m.actor.username if m.actor else None)
    operation_id = fields.Integer()
    other_shop = fields.Method("other_shop_code", allow_none=True)

    def other_shop_code(self, movement: Any) -> str | None:
        shop = other_shop_of(movement)
        return shop.code if shop else None


class MovementQuery(BaseSchema):
    sku = ScannedString(load_default=None, validate=validate.Length(min=1, max=32))
    # API.md promises every movement; paging is for clients that ask for it.
    limit = fields.Integer(load_default=None, validate=validate.Range(1, 10_000))
    before = fields.Integer(load_default=None, validate=validate.Range(1, 2**62))


class MovementList(BaseSchema):
    movements = fields.List(fields.Nested(MovementOut))
    next_before = fields.Integer(allow_none=True)


class VarianceOut(BaseSchema):
    sku = fields.String(attribute="product.sku")
    name = fields.String(attribute="product.name")
    expected = fields.Integer()
    counted = fields.Integer()
    delta = fields.Integer()


class OperationOut(BaseSchema):
    id = fields.Integer()
    kind = fields.String()
    shop_code = fields.String(attribute="shop.code")
    to_shop = fields.Function(lambda o: o.other_shop.code if o.other_shop else None)
    reference = fields.String(allow_none=True)
    supplier = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    user = fields.Function(lambda o: o.actor.username if o.actor else None)
    created_at = LocalDateTime()
    movements = fields.List(fields.Nested(MovementOut))
    variances = fields.List(fields.Nested(VarianceOut), attribute="count_lines")


class DifferenceOut(BaseSchema):
    sku = fields.String()
    name = fields.String()
    cached = fields.Integer()
    journal = fields.Integer()
    difference = fields.Integer()


class ReconcileOut(BaseSchema):
    shop_code = fields.String()
    ok = fields.Boolean()
    products_checked = fields.Integer()
    differences = fields.List(fields.Nested(DifferenceOut))


class LabelQuery(BaseSchema):
    sku = fields.List(
        ScannedString(validate=validate.Length(min=1, max=32)),
        required=True,
        validate=validate.Length(min=1, max=200),
    )
    copies = fields.Integer(load_default=1, validate=validate.Range(1, 100))


class LabelImageQuery(BaseSchema):
    width_mm = fields.Integer(load_default=50, validate=validate.Range(20, 120))
    height_mm = fields.Integer(load_default=30, validate=validate.Range(15, 100))
    dpi = fields.Integer(load_default=203, validate=validate.OneOf([203, 300, 600]))

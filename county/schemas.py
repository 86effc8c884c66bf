"""Request and response schemas of the county API; the OpenAPI document is built from them."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from core.api import BaseSchema, LocalDateTime, StrictInt
from core.ids import ID_RANGE
from county.services import MAX_THRESHOLD, MAX_TOP
from ledger.schemas import CODE, NAME

PERIOD = validate.Length(min=1, max=10)


class CategoryIn(BaseSchema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    position = StrictInt(load_default=None, validate=validate.Range(0, 1000))


class CategoryPatch(BaseSchema):
    name = fields.String(validate=NAME)
    position = StrictInt(validate=validate.Range(0, 1000))
    active = fields.Boolean(truthy={True}, falsy={False})


class ThresholdIn(BaseSchema):
    points = StrictInt(required=True, allow_none=True, validate=validate.Range(1, MAX_THRESHOLD))


class RuleCategoryIn(BaseSchema):
    category_code = fields.String(required=True, allow_none=True, validate=CODE)


class CategoryOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    position = fields.Integer()
    active = fields.Boolean()
    thresholds = fields.Method("_thresholds")

    def _thresholds(self, category: Any) -> dict[str, int | None]:
        return {kind: category.threshold_for(kind) for kind in ("month", "quarter", "year")}


class CategoryList(BaseSchema):
    categories = fields.List(fields.Nested(CategoryOut))


class RuleCategoryOut(BaseSchema):
    id = fields.Integer()
    code = fields.String()
    category_code = fields.String(allow_none=True)


class RankingQuery(BaseSchema):
    period = fields.String(load_default=None, validate=PERIOD)
    village_code = fields.String(load_default=None, validate=CODE)
    top = fields.Integer(load_default=None, validate=validate.Range(1, MAX_TOP))


class StarsQuery(RankingQuery):
    household_id = fields.Integer(load_default=None, validate=ID_RANGE)


class DashboardQuery(BaseSchema):
    month = fields.String(load_default=None, validate=PERIOD)
    shop_code = fields.String(load_default=None, validate=CODE)


class RankedOut(BaseSchema):
    rank = fields.Integer()
    household_id = fields.Integer()
    head_name = fields.String()
    village_code = fields.String()
    village_name = fields.String()
    earned = fields.Integer()
    penalised = fields.Integer()
    score = fields.Integer()


class PeriodOut(BaseSchema):
    key = fields.String()
    kind = fields.String()
    label = fields.String()
    first_day = fields.Date()
    end_day = fields.Date()


class RedListOut(BaseSchema):
    period = fields.Nested(PeriodOut)
    village_code = fields.String(attribute="village.code", allow_none=True)
    top = fields.Integer()
    rows = fields.List(fields.Nested(RankedOut))


class PenaltyOut(BaseSchema):
    at = LocalDateTime()
    points = fields.Integer()
    reason = fields.String()


class BlackEntryOut(BaseSchema):
    household_id = fields.Integer()
    head_name = fields.String()
    village_code = fields.String()
    village_name = fields.String()
    penalised = fields.Integer()
    count = fields.Integer()
    earned = fields.Integer()
    score = fields.Integer()
    penalties = fields.List(fields.Nested(PenaltyOut))


class BlackListOut(BaseSchema):
    period = fields.Nested(PeriodOut)
    village_code = fields.String(attribute="village.code", allow_none=True)
    rows = fields.List(fields.Nested(BlackEntryOut))


class TenStarOut(BaseSchema):
    period = fields.Nested(PeriodOut)
    village_code = fields.String(attribute="village.code", allow_none=True)
    categories = fields.Method("_categories")
    missing_thresholds = fields.Method("_missing")
    rows = fields.List(fields.Nested(RankedOut))

    def _categories(self, result: Any) -> list[str]:
        return [c.code for c in result.scheme.categories]

    def _missing(self, result: Any) -> list[str]:
        return [c.code for c in result.scheme.missing]


class HouseholdStarsOut(BaseSchema):
    household_id = fields.Integer()
    head_name = fields.String()
    village_code = fields.String()
    points = fields.Dict(keys=fields.String(), values=fields.Integer())
    stars = fields.List(fields.String())
    star_count = fields.Integer()


class StarsOut(BaseSchema):
    period = fields.Nested(PeriodOut)
    village_code = fields.String(allow_none=True)
    categories = fields.List(fields.Nested(CategoryOut))
    rows = fields.List(fields.Nested(HouseholdStarsOut))


class DashboardOut(BaseSchema):
    month = fields.String()
    shop_code = fields.String(allow_none=True)
    months = fields.List(fields.Dict())
    shop_days = fields.List(fields.Dict())
    top_goods = fields.List(fields.Dict())
    stock = fields.List(fields.Dict())
    low_stock = fields.List(fields.Dict())
    never_redeemed_count = fields.Integer()
    never_redeemed = fields.List(fields.Dict())

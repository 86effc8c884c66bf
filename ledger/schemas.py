"""Request and response schemas of the ledger API; the OpenAPI document is built from them."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_dump, validate, validates_schema

from core.api import BaseSchema, LocalDateTime, StrictInt, idempotency_key_field
from core.scanned import ScannedString
from ledger.services import MAX_AWARD_POINTS

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$", error="letters, digits, - and _")
NAME = validate.Length(min=1, max=100)


class VillageIn(BaseSchema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    redemption_floor = StrictInt(load_default=0, validate=validate.Range(0, 1_000_000))
    # The village's home shop (API.md): where its households may buy while it is offline.
    # Typed as an input method types it: full-width ＧＪＹ is GJY.
    shop_code = ScannedString(load_default=None, allow_none=True, validate=CODE)


class VillagePatch(BaseSchema):
    name = fields.String(validate=NAME)
    redemption_floor = StrictInt(validate=validate.Range(0, 1_000_000))
    # Absent: unchanged; null: the village has no home shop any more.
    shop_code = ScannedString(allow_none=True, validate=CODE)


class VillageOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    redemption_floor = fields.Integer()
    # Only when the village has a home shop (as in the request, `shop_code` is optional).
    shop_code = fields.String()

    @post_dump
    def _no_home_shop(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("shop_code") is None:
            data.pop("shop_code", None)
        return data


class VillageList(BaseSchema):
    villages = fields.List(fields.Nested(VillageOut))


class MemberSchema(BaseSchema):
    name = fields.String(required=True, validate=NAME)


class HouseholdIn(BaseSchema):
    village_code = fields.String(required=True, validate=CODE)
    head_name = fields.String(required=True, validate=NAME)
    members = fields.List(
        fields.Nested(MemberSchema), load_default=list, validate=validate.Length(max=30)
    )
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class HouseholdOut(BaseSchema):
    id = fields.Integer()
    village_code = fields.String(attribute="village.code")
    head_name = fields.String()
    members = fields.List(fields.Nested(MemberSchema))
    address = fields.String(allow_none=True)
    balance = fields.Integer(attribute="account.balance")
    earned_total = fields.Integer(attribute="account.earned_total")
    penalty_total = fields.Integer(attribute="account.penalty_total")
    redeemed_total = fields.Integer(attribute="account.redeemed_total")
    integrity_score = fields.Method("score")
    status = fields.String()
    created_at = LocalDateTime()

    def score(self, household: object) -> int:
        account = household.account  # type: ignore[attr-defined]
        return account.earned_total - account.penalty_total


class HouseholdQuery(BaseSchema):
    q = fields.String(load_default="", validate=validate.Length(max=100))
    village_code = fields.String(load_default=None, validate=CODE)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10_000_000))


class HouseholdList(BaseSchema):
    households = fields.List(fields.Nested(HouseholdOut))
    total = fields.Integer()


class StatementQuery(BaseSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    before = fields.Integer(load_default=None, validate=validate.Range(1, 2**62))


class StatementEntryOut(BaseSchema):
    id = fields.Integer()
    at = LocalDateTime()
    kind = fields.String()
    points = fields.Integer()
    balance_after = fields.Integer()
    reason = fields.String(allow_none=True)
    shop_code = fields.String(allow_none=True)
    sale_id = fields.Integer(allow_none=True)


class StatementOut(BaseSchema):
    household_id = fields.Integer()
    entries = fields.List(fields.Nested(StatementEntryOut))
    next_before = fields.Integer(allow_none=True)


class VerifyOut(BaseSchema):
    ok = fields.Boolean()
    transfers_checked = fields.Integer()
    first_bad_id = fields.Integer(allow_none=True)
    problems = fields.List(fields.String())
    # The shop nodes' chains of offline sales, checked in the same run; shown only once
    # a node has posted any.
    node_sales_checked = fields.Integer()
    first_bad_node_sale = fields.Dict()

    @post_dump
    def _nodes_when_any(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if not data.get("node_sales_checked"):
            data.pop("node_sales_checked", None)
        if data.get("first_bad_node_sale") is None:
            data.pop("first_bad_node_sale", None)
        return data


class RuleIn(BaseSchema):
    code = fields.String(required=True, validate=CODE)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    points = StrictInt(required=True, validate=validate.Range(-MAX_AWARD_POINTS, MAX_AWARD_POINTS))
    per = fields.String(load_default="household", validate=validate.OneOf(["household", "person"]))
    village_code = fields.String(load_default=None, allow_none=True, validate=CODE)
    # Optional: at most limit_count declarations per household per limit_period.
    limit_count = StrictInt(load_default=None, allow_none=True, validate=validate.Range(1, 1_000))
    limit_period = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(["day", "week", "month"])
    )

    @validates_schema
    def limit_with_period(self, data: dict, **_: object) -> None:
        if (data.get("limit_count") is None) != (data.get("limit_period") is None):
            raise ValidationError("give limit_count and limit_period together", "limit_count")


class RuleOut(BaseSchema):
    id = fields.Integer()
    code = fields.String()
    title = fields.String()
    points = fields.Integer()
    per = fields.String()
    village_code = fields.Function(lambda r: r.village.code if r.village else None)
    limit_count = fields.Integer(allow_none=True)
    limit_period = fields.String(allow_none=True)


class RuleQuery(BaseSchema):
    village_code = fields.String(load_default=None, validate=CODE)


class RuleList(BaseSchema):
    rules = fields.List(fields.Nested(RuleOut))


class AwardIn(BaseSchema):
    household_id = StrictInt(required=True, validate=validate.Range(1, 2**62))
    rule_code = fields.String(validate=CODE)
    persons = StrictInt(validate=validate.Range(1, 100))
    points = StrictInt(validate=validate.Range(-MAX_AWARD_POINTS, MAX_AWARD_POINTS))
    reason = fields.String(validate=validate.Length(max=500))
    idempotency_key = idempotency_key_field()

    @validates_schema
    def rule_or_points(self, data: dict, **_: object) -> None:
        if ("rule_code" in data) == ("points" in data):
            raise ValidationError("give either rule_code or points", "rule_code")
        if "points" in data and data["points"] == 0:
            raise ValidationError("must not be zero", "points")
        if "points" in data and not (data.get("reason") or "").strip():
            raise ValidationError("a reason is required with points", "reason")


class AwardOut(BaseSchema):
    transfer_id = fields.Integer()
    kind = fields.String()
    points = fields.Integer()
    balance = fields.Integer()


class ImportErrorOut(BaseSchema):
    line = fields.Integer()
    code = fields.String()
    detail = fields.String()


class ImportOut(BaseSchema):
    created = fields.Integer()
    replayed = fields.Integer()
    errors = fields.List(fields.Nested(ImportErrorOut))


class CorrectionIn(BaseSchema):
    transfer_id = StrictInt(required=True, validate=validate.Range(1, 2**62))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    idempotency_key = idempotency_key_field()

"""JSON API of the county office: categories, thresholds, rankings, stars and the dashboard."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from accounts.auth import Role, api_actor, roles_required
from core.api import Blueprint
from core.db import db, transactional, utcnow
from core.errors import ValidationFailed
from core.timeutil import local_tz
from county import schemas as s
from county import services as county

blp = Blueprint("county_api", __name__, url_prefix="/api/v1", description="County office")

OFFICE = (Role.ADMIN, Role.CADRE)


def _period(raw: str | None) -> county.Period:
    return county.parse_period(raw) if raw else county.current_month(utcnow(), local_tz())


@blp.route("/rule-categories", methods=["GET"])
@roles_required(*OFFICE)
@blp.response(200, s.CategoryList)
def list_categories() -> Any:
    return {"categories": county.list_categories(db.session)}


@blp.route("/rule-categories", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(s.CategoryIn)
@blp.response(201, s.CategoryOut)
@transactional()
def create_category(data: dict[str, Any]) -> Any:
    return county.create_category(db.session, actor=api_actor(), now=utcnow(), **data)


@blp.route("/rule-categories/<string:code>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(s.CategoryPatch)
@blp.response(200, s.CategoryOut)
@transactional()
def update_category(data: dict[str, Any], code: str) -> Any:
    return county.update_category(db.session, actor=api_actor(), code=code, **data)


@blp.route("/rule-categories/<string:code>/thresholds/<string:period_kind>", methods=["PUT"])
@roles_required(Role.ADMIN)
@blp.arguments(s.ThresholdIn)
@blp.response(200, s.CategoryOut)
@transactional()
def set_threshold(data: dict[str, Any], code: str, period_kind: str) -> Any:
    county.set_threshold(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        category_code=code,
        period_kind=period_kind,
        points=data["points"],
    )
    return county.get_category(db.session, code)


@blp.route("/rules/<id:rule_id>/category", methods=["PUT"])
@roles_required(*OFFICE)
@blp.arguments(s.RuleCategoryIn)
@blp.response(200, s.RuleCategoryOut)
@transactional()
def set_rule_category(data: dict[str, Any], rule_id: int) -> Any:
    rule = county.set_rule_category(
        db.session, actor=api_actor(), rule_id=rule_id, category_code=data["category_code"]
    )
    category = county.get_category_by_id(db.session, rule.category_id)
    return {"id": rule.id, "code": rule.code, "category_code": category.code if category else None}


def _scope(query: dict[str, Any]) -> Any:
    return county.ranking_scope(db.session, actor=api_actor(), village_code=query["village_code"])


@blp.route("/county/red-list", methods=["GET"])
@roles_required(*OFFICE)
@blp.arguments(s.RankingQuery, location="query")
@blp.response(200, s.RedListOut)
def red_list(query: dict[str, Any]) -> Any:
    village = _scope(query)
    default = county.DEFAULT_VILLAGE_TOP if village else county.DEFAULT_COUNTY_TOP
    return county.red_list(
        db.session,
        period=_period(query["period"]),
        tz=local_tz(),
        village=village,
        top=query["top"] or default,
    )


@blp.route("/county/black-list", methods=["GET"])
@roles_required(*OFFICE)
@blp.arguments(s.RankingQuery, location="query")
@blp.response(200, s.BlackListOut)
def black_list(query: dict[str, Any]) -> Any:
    return county.black_list(
        db.session, period=_period(query["period"]), tz=local_tz(), village=_scope(query)
    )


@blp.route("/county/ten-star", methods=["GET"])
@roles_required(*OFFICE)
@blp.arguments(s.RankingQuery, location="query")
@blp.response(200, s.TenStarOut)
def ten_star(query: dict[str, Any]) -> Any:
    return county.ten_star_list(
        db.session, period=_period(query["period"]), tz=local_tz(), village=_scope(query)
    )


@blp.route("/county/stars", methods=["GET"])
@roles_required(*OFFICE)
@blp.arguments(s.StarsQuery, location="query")
@blp.response(200, s.StarsOut)
def stars(query: dict[str, Any]) -> Any:
    village = _scope(query)
    if village is None and query["household_id"] is None:
        # County-wide, a row per household would be the whole county: ask for a village.
        raise ValidationFailed(errors={"village_code": ["give a village_code or a household_id"]})
    table = county.compute_stars(
        db.session,
        period=_period(query["period"]),
        tz=local_tz(),
        village=village,
        household_id=query["household_id"],
    )
    codes = {c.id: c.code for c in table.scheme.categories}
    return {
        "period": table.period,
        "village_code": village.code if village else None,
        "categories": table.scheme.categories,
        "rows": [
            {
                "household_id": r.household_id,
                "head_name": r.head_name,
                "village_code": r.village_code,
                "points": {codes[k]: v for k, v in r.points.items() if k in codes},
                "stars": [codes[k] for k in r.stars],
                "star_count": r.star_count,
            }
            for r in table.rows
        ],
    }


@blp.route("/county/dashboard", methods=["GET"])
@roles_required(Role.ADMIN, Role.MANAGER)
@blp.arguments(s.DashboardQuery, location="query")
@blp.response(200, s.DashboardOut)
@transactional()
def dashboard(query: dict[str, Any]) -> Any:
    shop = county.dashboard_shop_scope(db.session, actor=api_actor(), shop_code=query["shop_code"])
    month = county.parse_month(query["month"]) if query["month"] else _period(None)
    figures = county.dashboard_figures(
        db.session, tz=local_tz(), month=month, shop=shop, now=utcnow()
    )
    return {
        "month": month.key,
        "shop_code": shop.code if shop else None,
        "months": [asdict(m) for m in figures.months],
        "shop_days": [asdict(d) for d in figures.shop_days],
        "top_goods": [asdict(g) for g in figures.top_goods],
        "stock": [asdict(x) for x in figures.stock],
        "low_stock": [asdict(x) for x in figures.low_stock],
        "never_redeemed_count": figures.never_redeemed_count,
        "never_redeemed": [asdict(x) for x in figures.never_redeemed],
    }

"""HTML pages of the counter: the clerk's selling screen and the day's report."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, make_response, render_template, request, url_for

from config.auth import Role, current_actor, page_roles_required
from config.db import db, utcnow
from config.errors import ValidationFailed
from config.timeutil import business_day, local_tz, to_local
from pos import services

bp = Blueprint("pos", __name__)

SHOP_STAFF = (Role.ADMIN, Role.MANAGER, Role.CLERK)
MANAGERS = (Role.ADMIN, Role.MANAGER)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"local_time": lambda at: to_local(at).strftime("%Y-%m-%d %H:%M") if at else ""}


@bp.route("/counter")
@page_roles_required(*SHOP_STAFF)
def counter() -> Any:
    shop = services.counter_shop(
        db.session, actor=current_actor(), shop_code=request.args.get("shop")
    )
    body = render_template(
        "pos/counter.html",
        shop=shop,
        sales_url=url_for("pos_api.record_sale", code=shop.code),
        customer_url=url_for("pos_api.find_customer", code=shop.code),
        barcode_url=url_for("inventory_api.search_products") + "/by-barcode/",
        sku_url=url_for("inventory_api.search_products") + "/",
    )
    response = make_response(body)
    # The page holds a cart and a key; a cached copy must never come back from history.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/shops/<string:code>/reports/daily")
@page_roles_required(*MANAGERS)
def daily_report(code: str) -> Any:
    raw = request.args.get("date")
    try:
        day = date.fromisoformat(raw) if raw else business_day(utcnow(), local_tz())
    except ValueError as exc:
        raise ValidationFailed(errors={"date": ["YYYY-MM-DD"]}) from exc
    report = services.daily_report(
        db.session, actor=current_actor(), shop_code=code, day=day, tz=local_tz()
    )
    return render_template("pos/daily_report.html", report=report)


@bp.route("/shops/<string:code>/sales")
@page_roles_required(*SHOP_STAFF)
def sales(code: str) -> Any:
    """Sale history: by receipt number, household or business day (today by default)."""
    actor = current_actor()
    receipt_no = (request.args.get("receipt_no") or "").replace("\x00", "").strip()[:64]
    household = (request.args.get("household_id") or "").strip()
    raw_day = request.args.get("date")
    try:
        day = date.fromisoformat(raw_day) if raw_day else None
        household_id = int(household) if household else None
    except ValueError as exc:
        raise ValidationFailed(
            errors={"date": ["YYYY-MM-DD"], "household_id": ["1, 2, 3…"]}
        ) from exc
    if not (receipt_no or household_id or day):
        day = business_day(utcnow(), local_tz())
    rows = services.find_sales(
        db.session,
        actor=actor,
        shop_code=code,
        receipt_no=receipt_no or None,
        household_id=household_id if household_id and 0 < household_id < 2**31 else None,
        day=day,
    )
    return render_template(
        "pos/sales.html",
        code=code,
        rows=rows,
        receipt_no=receipt_no,
        household_id=household,
        day=day.isoformat() if day else "",
    )


@bp.route("/sales/<int(max=2147483647):sale_id>")
@page_roles_required(*SHOP_STAFF)
def sale(sale_id: int) -> Any:
    actor = current_actor()
    row = services.get_sale(db.session, actor=actor, sale_id=sale_id)
    receipt = services.sale_receipt(
        db.session, actor=actor, sale_id=sale_id, tz=local_tz(), copy=True, width=32
    )
    return render_template(
        "pos/sale.html", sale=row, receipt=receipt, returned=services.returned_qty(row)
    )

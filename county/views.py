"""HTML pages of the county office: rankings and their notice, categories, dashboard, exports."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectChoice

from accounts.auth import Role, current_actor, page_roles_required
from core.db import db, run_unit_of_work, utcnow
from core.errors import DomainError, Forbidden, ValidationFailed
from core.fonts import find_cjk_font
from core.templating import problem_box
from core.timeutil import local_tz
from county import charts, exports, notices
from county import services as county
from county.forms import CategoryEditForm, CategoryForm, RuleCategoryForm
from inventory import services as inventory
from ledger import services as ledger

bp = Blueprint("county", __name__, url_prefix="/county")

OFFICE = (Role.ADMIN, Role.CADRE)
PERIOD_KIND_LABELS = {
    "month": _l("Month"),
    "quarter": _l("Quarter"),
    "year": _l("Year"),
}


# --- shared helpers ------------------------------------------------------------------


def _period_arg(name: str = "period") -> county.Period:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return county.current_month(utcnow(), local_tz())
    return county.parse_period(raw[:20])


def _month_arg() -> county.Period:
    raw = request.args.get("month")
    if raw is None or raw == "":
        return county.current_month(utcnow(), local_tz())
    return county.parse_month(raw[:20])


def _top_arg(default: int) -> int:
    raw = request.args.get("top")
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= county.MAX_TOP):
        raise ValidationFailed(errors={"top": [_l("1 to %(most)s", most=county.MAX_TOP)]})
    return int(raw)


def _village_arg() -> str | None:
    value = request.args.get("village")
    return value[:32] if value else None


def _rankings(village: Any, period: county.Period, top: int) -> dict[str, Any]:
    tz = local_tz()
    return {
        "red": county.red_list(db.session, period=period, tz=tz, village=village, top=top),
        "black": county.black_list(db.session, period=period, tz=tz, village=village),
        "ten_star": county.ten_star_list(db.session, period=period, tz=tz, village=village),
    }


@bp.route("/")
@page_roles_required(Role.ADMIN, Role.CADRE, Role.MANAGER)
def index() -> Any:
    actor = current_actor()
    if actor.is_admin:
        return redirect(url_for(".dashboard"))
    if actor.role == Role.MANAGER:
        return redirect(url_for(".shop_dashboard", code=actor.shop_code))
    return redirect(url_for(".rankings"))


# --- rankings ------------------------------------------------------------------------


@bp.route("/rankings")
@page_roles_required(*OFFICE)
def rankings() -> Any:
    actor = current_actor()
    village = county.ranking_scope(db.session, actor=actor, village_code=_village_arg())
    period = _period_arg()
    top = _top_arg(county.DEFAULT_VILLAGE_TOP if village else county.DEFAULT_COUNTY_TOP)
    lists = _rankings(village, period, top)
    stars = None
    if village is not None:
        # The stars grid is a village's; county-wide it would be a hundred thousand rows.
        stars = county.compute_stars(db.session, period=period, tz=local_tz(), village=village)
    return render_template(
        "county/rankings.html",
        period=period,
        village=village,
        villages=ledger.list_villages(db.session) if actor.is_admin else [],
        top=top,
        stars=stars,
        kind_labels=PERIOD_KIND_LABELS,
        **lists,
    )


@bp.route("/rankings/notice.pdf")
@page_roles_required(*OFFICE)
def notice() -> Any:
    actor = current_actor()
    village = county.ranking_scope(db.session, actor=actor, village_code=_village_arg())
    period = _period_arg()
    top = _top_arg(county.DEFAULT_VILLAGE_TOP if village else county.DEFAULT_COUNTY_TOP)
    lists = _rankings(village, period, top)
    tz = local_tz()
    pdf = notices.render_notice(
        lists["red"],
        lists["black"],
        lists["ten_star"],
        font_path=find_cjk_font(current_app.config.get("CJK_FONT_PATH")),
        tz=tz,
        today=utcnow().astimezone(tz).date(),
    )
    name = f"{village.name if village else '长阳县'}-{period.key}-红黑榜.pdf"
    response = send_file(
        io.BytesIO(pdf), mimetype="application/pdf", download_name=name, as_attachment=False
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- categories and thresholds -------------------------------------------------------


def _categories_page(
    *,
    new_form: CategoryForm | None = None,
    problem: dict[str, Any] | None = None,
    status: int = 200,
) -> Any:
    actor = current_actor()
    categories = county.list_categories(db.session)
    rules = county.rules_with_categories(db.session, actor=actor)
    choices = [SelectChoice("", _("— none —"))] + [
        SelectChoice(c.code, c.name) for c in categories if c.active
    ]
    rule_forms = {}
    for rule, category in rules:
        form = RuleCategoryForm(prefix=f"r{rule.id}", formdata=None)
        form.category.choices = choices
        form.category.data = category.code if category else ""
        rule_forms[rule.id] = form
    edit_forms = {}
    for c in categories:
        form = CategoryEditForm(prefix=f"c{c.id}", formdata=None)
        form.name.data, form.position.data, form.active.data = c.name, c.position, c.active
        for kind in ("month", "quarter", "year"):
            form[kind].data = c.threshold_for(kind)
        edit_forms[c.id] = form
    return render_template(
        "county/categories.html",
        categories=categories,
        rules=rules,
        rule_forms=rule_forms,
        edit_forms=edit_forms,
        new_form=new_form or CategoryForm(formdata=None),
        may_edit=actor.is_admin,
        actor=actor,
        problem=problem,
    ), status


def _refusal(exc: DomainError, form: Any = None) -> tuple[dict[str, Any], int]:
    db.session.rollback()
    return problem_box(exc, form), exc.status


def _invalid(form: Any) -> tuple[dict[str, Any], int]:
    messages = [f"{form[name].label.text}: {m}" for name, ms in form.errors.items() for m in ms]
    return {
        "title": _("Please correct the marked fields."),
        "detail": "",
        "messages": messages,
    }, 422


@bp.route("/categories", methods=["GET", "POST"])
@page_roles_required(*OFFICE)
def categories() -> Any:
    if request.method == "GET":
        return _categories_page()
    actor = current_actor()
    if not actor.is_admin:
        # Cadres see the categories; only the county office makes them.
        raise Forbidden()
    form = CategoryForm()
    if not form.validate():
        problem, status = _invalid(form)
        return _categories_page(new_form=form, problem=problem, status=status)
    try:
        category = run_unit_of_work(
            lambda: county.create_category(
                db.session,
                actor=actor,
                now=utcnow(),
                code=form.code.data,
                name=form.name.data,
                position=form.position.data,
            )
        )
    except DomainError as exc:
        problem, status = _refusal(exc, form)
        return _categories_page(new_form=form, problem=problem, status=status)
    flash(_("Category %(name)s was created.", name=category.name), "success")
    return redirect(url_for(".categories"), 303)


@bp.route("/categories/<string:code>", methods=["POST"])
@page_roles_required(Role.ADMIN)
def category_edit(code: str) -> Any:
    actor = current_actor()
    found = county.get_category(db.session, code[:32])
    form = CategoryEditForm(prefix=f"c{found.id}")
    if not form.validate():
        problem, status = _invalid(form)
        return _categories_page(problem=problem, status=status)

    def save() -> None:
        county.update_category(
            db.session,
            actor=actor,
            code=found.code,
            name=form.name.data,
            position=form.position.data,
            active=bool(form.active.data),
        )
        for kind in ("month", "quarter", "year"):
            county.set_threshold(
                db.session,
                actor=actor,
                now=utcnow(),
                category_code=found.code,
                period_kind=kind,
                points=form[kind].data,
            )

    try:
        run_unit_of_work(save)
    except DomainError as exc:
        problem, status = _refusal(exc)
        return _categories_page(problem=problem, status=status)
    flash(_("Category %(name)s was saved.", name=form.name.data), "success")
    return redirect(url_for(".categories"), 303)


@bp.route("/rules/<id:rule_id>/category", methods=["POST"])
@page_roles_required(*OFFICE)
def rule_category(rule_id: int) -> Any:
    actor = current_actor()
    form = RuleCategoryForm(prefix=f"r{rule_id}")
    if not form.validate():
        problem, status = _invalid(form)
        return _categories_page(problem=problem, status=status)
    try:
        run_unit_of_work(
            lambda: county.set_rule_category(
                db.session, actor=actor, rule_id=rule_id, category_code=form.category.data or None
            )
        )
    except DomainError as exc:
        problem, status = _refusal(exc)
        return _categories_page(problem=problem, status=status)
    flash(_("The rule's category was saved."), "success")
    return redirect(url_for(".categories"), 303)


# --- dashboard -----------------------------------------------------------------------


def _charts(figures: county.Dashboard) -> dict[str, Any]:
    months = figures.months
    month_series = [
        charts.Series(_("Awarded"), [m.awarded for m in months], charts.PALETTE[0]),
        charts.Series(_("Penalised"), [m.penalised for m in months], charts.PALETTE[1]),
        charts.Series(_("Redeemed"), [m.redeemed for m in months], charts.PALETTE[2]),
    ]
    if figures.shop is not None:
        month_series = month_series[2:]
    days = [d.isoformat() for d in _days(figures.month)]
    per_day: dict[str, int] = {}
    per_shop: dict[str, int] = {}
    for row in figures.shop_days:
        per_day[row.day] = per_day.get(row.day, 0) + row.points
        per_shop[row.shop_code] = per_shop.get(row.shop_code, 0) + row.points
    stock_names = {s.shop_code: s.shop_name for s in figures.stock}
    shop_rows = sorted(per_shop.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "months_chart": charts.column_chart(
            [m.month[2:] for m in months],
            month_series,
            title=_("Points per month"),
        ),
        "days_chart": charts.column_chart(
            [d[8:] for d in days],
            [charts.Series(_("Points redeemed"), [per_day.get(d, 0) for d in days], "#0b4a91")],
            title=_("Points redeemed per day, %(month)s", month=figures.month.key),
        ),
        "shops_chart": charts.bar_chart(
            [stock_names.get(code, code) for code, _v in shop_rows],
            [v for _c, v in shop_rows],
            title=_("Points redeemed per shop, %(month)s", month=figures.month.key),
        ),
        "goods_chart": charts.bar_chart(
            [g.name for g in figures.top_goods],
            [g.points for g in figures.top_goods],
            title=_("Top goods by points, %(month)s", month=figures.month.key),
            colour="#b8860b",
        ),
        "stock_chart": charts.bar_chart(
            [s.shop_name for s in figures.stock],
            [s.value for s in figures.stock],
            title=_("Stock value in points, per shop"),
            colour="#6a3d9a",
        ),
        "days": days,
        "per_day": per_day,
        "shop_rows": [(code, stock_names.get(code, code), v) for code, v in shop_rows],
        "grid": {(r.shop_code, r.day): r for r in figures.shop_days},
    }


def _days(month: county.Period) -> list[Any]:
    day, out = month.first_day, []
    while day < month.end_day:
        out.append(day)
        day += timedelta(days=1)
    return out


@bp.route("/dashboard")
@page_roles_required(Role.ADMIN)
def dashboard() -> Any:
    month = _month_arg()
    # A unit of work: closed months' totals folded on this visit are kept for the next.
    figures = run_unit_of_work(
        lambda: county.dashboard_figures(db.session, tz=local_tz(), month=month, now=utcnow())
    )
    return render_template(
        "county/dashboard.html",
        figures=figures,
        month=month,
        shops=inventory.list_shops(db.session),
        **_charts(figures),
    )


@bp.route("/shops/<string:code>")
@page_roles_required(Role.ADMIN, Role.MANAGER)
def shop_dashboard(code: str) -> Any:
    shop = county.dashboard_shop_scope(db.session, actor=current_actor(), shop_code=code[:32])
    month = _month_arg()
    figures = run_unit_of_work(
        lambda: county.dashboard_figures(
            db.session, tz=local_tz(), month=month, shop=shop, now=utcnow()
        )
    )
    return render_template(
        "county/dashboard.html",
        figures=figures,
        month=month,
        shops=[],
        **_charts(figures),
    )


# --- exports -------------------------------------------------------------------------


def _format(fmt: str) -> str:
    if fmt not in ("csv", "xlsx"):
        raise ValidationFailed(errors={"format": [_l("csv or xlsx")]})
    return fmt


def _send(table: exports.Table, fmt: str) -> Response:
    return exports.send_table(table, _format(fmt))


@bp.route("/exports/households.<string:fmt>")
@page_roles_required(*OFFICE)
def export_households(fmt: str) -> Any:
    village = county.ranking_scope(db.session, actor=current_actor(), village_code=_village_arg())
    return _send(exports.households_table(db.session, village=village), fmt)


@bp.route("/exports/households/<id:household_id>/statement.<string:fmt>")
@page_roles_required(*OFFICE)
def export_statement(household_id: int, fmt: str) -> Any:
    household = ledger.get_household(db.session, household_id)
    county.ranking_scope(db.session, actor=current_actor(), village_code=household.village.code)
    return _send(exports.statement_table(db.session, household=household, tz=local_tz()), fmt)


@bp.route("/exports/rankings.<string:fmt>")
@page_roles_required(*OFFICE)
def export_rankings(fmt: str) -> Any:
    village = county.ranking_scope(db.session, actor=current_actor(), village_code=_village_arg())
    period = _period_arg()
    top = _top_arg(county.DEFAULT_VILLAGE_TOP if village else county.DEFAULT_COUNTY_TOP)
    lists = _rankings(village, period, top)
    return _send(exports.rankings_table(lists["red"], lists["black"], tz=local_tz()), fmt)


@bp.route("/exports/shops/<string:code>/daily.<string:fmt>")
@page_roles_required(Role.ADMIN, Role.MANAGER)
def export_shop_days(code: str, fmt: str) -> Any:
    shop = county.dashboard_shop_scope(db.session, actor=current_actor(), shop_code=code[:32])
    assert shop is not None
    table = exports.shop_month_table(db.session, shop=shop, month=_month_arg(), tz=local_tz())
    return _send(table, fmt)


@bp.route("/exports/shops/<string:code>/stock.<string:fmt>")
@page_roles_required(Role.ADMIN, Role.MANAGER)
def export_stock(code: str, fmt: str) -> Any:
    shop = county.dashboard_shop_scope(db.session, actor=current_actor(), shop_code=code[:32])
    assert shop is not None
    return _send(exports.stock_table(db.session, shop=shop), fmt)


@bp.route("/exports/shops/<string:code>/movements.<string:fmt>")
@page_roles_required(Role.ADMIN, Role.MANAGER)
def export_movements(code: str, fmt: str) -> Any:
    shop = county.dashboard_shop_scope(db.session, actor=current_actor(), shop_code=code[:32])
    assert shop is not None
    table = exports.movements_table(db.session, shop=shop, month=_month_arg(), tz=local_tz())
    return _send(table, fmt)

"""HTML pages of the counter: the clerk's selling screen and the day's report."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from accounts.auth import Role, current_actor, page_roles_required
from core.db import db, run_unit_of_work, utcnow
from core.errors import DomainError, NotFound, ValidationFailed
from core.scanned import normalize_scanned
from core.templating import problem_box
from core.timeutil import business_day, local_tz, to_local
from inventory.forms import read_lines
from inventory.models import Shop
from member_cards.signing import Keyring, keyring_from_config
from pos import services
from pos.forms import ReturnForm, VoidForm
from pos.receipts.layout import layout_receipt, render_text

bp = Blueprint("pos", __name__)

SHOP_STAFF = (Role.ADMIN, Role.MANAGER, Role.CLERK)
MANAGERS = (Role.ADMIN, Role.MANAGER)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"local_time": lambda at: to_local(at).strftime("%Y-%m-%d %H:%M") if at else ""}


@bp.route("/counter")
@page_roles_required(*SHOP_STAFF)
def counter() -> Any:
    shop = _counter_shop("pos.counter")
    if not isinstance(shop, Shop):
        return shop
    body = render_template(
        "pos/counter.html",
        shop=shop,
        sales_url=url_for("pos_api.record_sale", code=shop.code),
        customer_url=url_for("pos_api.find_customer", code=shop.code),
        # The scanned code is appended by the page, after its own normalizing.
        goods_url=url_for("pos_api.find_goods", code=shop.code, scanned="-")[:-1],
        print_url=url_for("pos_printing_api.sale_print", sale_id=0),
    )
    response = make_response(body)
    # The page holds a cart and a key; a cached copy must never come back from history.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/counter/display")
@page_roles_required(*SHOP_STAFF)
def counter_display() -> Any:
    """The customer display (客显): the counter's cart in large type, on a screen facing them."""
    shop = _counter_shop("pos.counter_display")
    if not isinstance(shop, Shop):
        return shop
    response = make_response(render_template("pos/display.html", shop=shop))
    response.headers["Cache-Control"] = "no-store"
    return response


def _counter_shop(endpoint: str) -> Any:
    """The shop of the counter asked for, or for the county office a page to pick one.

    Staff always get their own shop. The office works at any counter, so without a shop
    named (or with one that is not there) it is shown the shops to choose from.
    """
    actor = current_actor()
    typed = normalize_scanned((request.args.get("shop") or "").replace("\x00", ""))[:32]
    if actor.is_admin:
        problem, status = None, 200
        if typed:
            try:
                return services.counter_shop(db.session, actor=actor, shop_code=typed)
            except NotFound as exc:
                problem, status = problem_box(exc), exc.status
        page = render_template(
            "pos/counter_shops.html",
            shops=services.counter_shops(db.session, actor=actor),
            endpoint=endpoint,
            problem=problem,
        )
        return make_response(page, status)
    return services.counter_shop(db.session, actor=actor, shop_code=None)


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
    heads = services.household_heads(db.session, [row.household_id for row in report.sale_rows])
    return render_template("pos/daily_report.html", report=report, heads=heads)


@bp.route("/shops/<string:code>/sales")
@page_roles_required(*SHOP_STAFF)
def sales(code: str) -> Any:
    """Sale history from one box: a receipt, a household's number or head, a scanned card.

    Whatever is typed shows sales or says none were found; only a date that is not one is
    refused, and on this same page.
    """
    actor = current_actor()
    # Older links (and the API's names) ask by receipt_no or household_id: one box now.
    names = ("q", "receipt_no", "household_id")
    typed = next((request.args[name] for name in names if request.args.get(name)), "")
    date_text = normalize_scanned((request.args.get("date") or "").replace("\x00", ""))[:20]
    problem, status = None, 200
    try:
        day = date.fromisoformat(date_text) if date_text else None
    except ValueError:
        day, status = None, 422
        problem = {
            "title": _("This is not a date."),
            "detail": _("Write the date as year-month-day, for example 2026-11-27."),
            "messages": [],
        }
    if not (normalize_scanned(typed) or day):
        day = business_day(utcnow(), local_tz())
    found = services.search_sales(
        db.session, actor=actor, shop_code=code, text=typed, keyring=_keyring(), day=day
    )
    if found.kind == services.SearchKind.RECEIPT and len(found.rows) == 1:
        # A scanned receipt (its QR or barcode) goes straight to the sale, to return goods.
        return redirect(url_for(".sale", sale_id=found.rows[0].id))
    heads = services.household_heads(
        db.session, [row.household_id for row in found.rows] + [found.household_id or 0]
    )
    body = render_template(
        "pos/sales.html",
        code=code,
        found=found,
        rows=found.rows,
        heads=heads,
        q=found.text if found.kind != services.SearchKind.CARD else "",
        day=day.isoformat() if day else "",
        # A date that is not one stays in its field, to be corrected.
        date_text=date_text if problem else (day.isoformat() if day else ""),
        problem=problem,
    )
    return make_response(body, status)


def _keyring() -> Keyring:
    return keyring_from_config(current_app.config)


SALE = "/sales/<id:sale_id>"


@bp.route(SALE)
@page_roles_required(*SHOP_STAFF)
def sale(sale_id: int) -> Any:
    return _sale_page(sale_id)


@bp.route(f"{SALE}/return", methods=["POST"])
@page_roles_required(*MANAGERS)
def return_goods(sale_id: int) -> Any:
    """Goods back against the sale, by line and quantity; the points go back with them."""
    actor = current_actor()
    form = ReturnForm(prefix="return")
    entered = dict(zip(request.form.getlist("sku"), request.form.getlist("qty"), strict=False))
    try:
        lines = [(sku, qty) for sku, qty in read_lines(request.form, "qty", skip_blank=True) if qty]
    except DomainError as exc:
        return _sale_page(
            sale_id, return_form=form, problem=problem_box(exc), status=exc.status, entered=entered
        )
    if not form.validate():
        return _sale_page(
            sale_id, return_form=form, problem=_form_problem(), status=422, entered=entered
        )
    if not lines:
        problem = {
            "title": _("Nothing to return"),
            "detail": _("Type how many of which goods come back."),
            "messages": [],
        }
        return _sale_page(sale_id, return_form=form, problem=problem, status=422, entered=entered)
    try:
        done = run_unit_of_work(
            lambda: services.record_return(
                db.session,
                actor=actor,
                now=utcnow(),
                tz=local_tz(),
                sale_id=sale_id,
                lines=lines,
                reason=form.reason.data,
                idempotency_key=form.idempotency_key.data,
            )
        )
    except DomainError as exc:
        return _sale_page(
            sale_id,
            return_form=form,
            problem=problem_box(exc, form),
            status=exc.status,
            entered=entered,
        )
    flash(
        _(
            "Returned. %(points)s points went back to the household; it now has %(balance)s.",
            points=done.refund_points,
            balance=done.balance_after,
        ),
        "success",
    )
    return redirect(url_for(".sale", sale_id=sale_id))


@bp.route(f"{SALE}/void", methods=["POST"])
@page_roles_required(*MANAGERS)
def void(sale_id: int) -> Any:
    """Undo the whole sale on its own day: every point back, every item back on the shelf."""
    actor = current_actor()
    form = VoidForm(prefix="void")
    if not form.validate():
        return _sale_page(sale_id, void_form=form, problem=_form_problem(), status=422)
    try:
        done = run_unit_of_work(
            lambda: services.void_sale(
                db.session,
                actor=actor,
                now=utcnow(),
                tz=local_tz(),
                sale_id=sale_id,
                reason=form.reason.data,
                idempotency_key=form.idempotency_key.data,
            )
        )
    except DomainError as exc:
        return _sale_page(
            sale_id, void_form=form, problem=problem_box(exc, form), status=exc.status
        )
    flash(
        _(
            "Voided. %(points)s points went back to the household; it now has %(balance)s.",
            points=done.refund_points,
            balance=done.balance_after,
        ),
        "success",
    )
    return redirect(url_for(".sale", sale_id=sale_id))


def _form_problem() -> dict[str, Any]:
    return {"title": _("Please check the form."), "detail": "", "messages": []}


def _sale_page(
    sale_id: int,
    *,
    return_form: ReturnForm | None = None,
    void_form: VoidForm | None = None,
    problem: dict[str, Any] | None = None,
    status: int = 200,
    entered: dict[str, str] | None = None,
) -> Any:
    """One sale: its lines, returns and receipt, and for a manager the return and void forms.

    A refused form is drawn again with what was typed; every drawing gets fresh keys, since a
    refused submission recorded nothing.
    """
    actor = current_actor()
    tz = local_tz()
    row = services.get_sale(db.session, actor=actor, sale_id=sale_id)
    # One look-up of shop, household and clerk serves the receipt and the page's heading.
    receipt = services.receipt_data(db.session, row, tz=tz, copy=True)
    return_form = return_form or ReturnForm(prefix="return", formdata=None)
    void_form = void_form or VoidForm(prefix="void", formdata=None)
    return_form.idempotency_key.data = uuid.uuid4().hex
    void_form.idempotency_key.data = uuid.uuid4().hex
    returned = services.returned_qty(row)
    returnable = {line.id: line.qty - returned.get(line.id, 0) for line in row.lines}
    open_to_manager = (
        actor.may_manage_shop(row.shop_code)
        and row.status != "voided"
        and any(left > 0 for left in returnable.values())
    )
    body = render_template(
        "pos/sale.html",
        sale=row,
        head=receipt.head_name,
        receipt=render_text(layout_receipt(receipt, columns=32)),
        returned=returned,
        returnable=returnable,
        may_return=open_to_manager,
        may_void=open_to_manager and row.business_day == business_day(utcnow(), tz),
        return_form=return_form,
        void_form=void_form,
        problem=problem,
        entered=entered or {},
    )
    response = make_response(body, status)
    # The forms carry one-time keys; a page from history must not resubmit an old one.
    response.headers["Cache-Control"] = "no-store"
    return response

"""HTML pages of the counter: the clerk's selling screen and the day's report."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from accounts.auth import Role, current_actor, page_roles_required
from core.db import db, run_unit_of_work, utcnow
from core.errors import DomainError, ValidationFailed
from core.ids import is_id
from core.scanned import normalize_code, normalize_scanned, parse_scanned_int
from core.templating import problem_box
from core.timeutil import business_day, local_tz, to_local
from inventory.forms import read_lines
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
    shop = services.counter_shop(
        db.session, actor=current_actor(), shop_code=request.args.get("shop")
    )
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
    shop = services.counter_shop(
        db.session, actor=current_actor(), shop_code=request.args.get("shop")
    )
    response = make_response(render_template("pos/display.html", shop=shop))
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
    heads = services.household_heads(db.session, [row.household_id for row in report.sale_rows])
    return render_template("pos/daily_report.html", report=report, heads=heads)


@bp.route("/shops/<string:code>/sales")
@page_roles_required(*SHOP_STAFF)
def sales(code: str) -> Any:
    """Sale history: by receipt number, household or business day (today by default)."""
    actor = current_actor()
    # Typed or scanned (a receipt's QR code), read as API.md says; receipt numbers ignore case.
    receipt_no = normalize_code((request.args.get("receipt_no") or "").replace("\x00", ""))[:64]
    typed_household = request.args.get("household_id") or ""
    household = normalize_scanned(typed_household)
    household_id = parse_scanned_int(typed_household) if household else None
    raw_day = request.args.get("date")
    try:
        day = date.fromisoformat(raw_day) if raw_day else None
        if household and household_id is None:
            raise ValueError(household)
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
        household_id=household_id if household_id and is_id(household_id) else None,
        day=day,
    )
    exact = [row for row in rows if receipt_no and row.receipt_no.upper() == receipt_no]
    if len(exact) == 1:
        # A scanned receipt (its QR or barcode) goes straight to the sale, to return goods.
        return redirect(url_for(".sale", sale_id=exact[0].id))
    return render_template(
        "pos/sales.html",
        code=code,
        rows=rows,
        heads=services.household_heads(db.session, [row.household_id for row in rows]),
        receipt_no=receipt_no,
        household_id=household,
        day=day.isoformat() if day else "",
    )


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

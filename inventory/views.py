"""HTML pages of inventory for shop managers and the county office."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectChoice

from accounts.auth import Role, User, current_actor, page_roles_required
from core.db import db, run_unit_of_work, utcnow
from core.errors import DomainError
from core.scanned import normalize_scanned
from core.templating import problem_box
from core.timeutil import to_local
from inventory import services
from inventory.api import label_for, render_or_unavailable
from inventory.forms import (
    AdjustForm,
    CountForm,
    OperationForm,
    ReceiveForm,
    ReorderForm,
    TransferForm,
    read_lines,
)
from inventory.labels import render_label_image, render_label_sheet
from inventory.models import AdjustmentReason, StockOperation
from inventory.services import MAX_QUANTITY

bp = Blueprint("inventory", __name__)

SHOP_STAFF = (Role.ADMIN, Role.MANAGER, Role.CLERK)
MOVEMENTS_PER_PAGE = 50
MAX_MOVEMENT_ID = 2**62

MOVEMENT_LABELS = {
    "receipt": _l("Receipt"),
    "sale": _l("Sale"),
    "return": _l("Return"),
    "adjustment": _l("Adjustment"),
    "count": _l("Stock take"),
    "transfer_in": _l("Transfer in"),
    "transfer_out": _l("Transfer out"),
}
OPERATION_LABELS = {
    "receipt": _l("Delivery received"),
    "adjustment": _l("Stock adjustment"),
    "count": _l("Stock take"),
    "transfer": _l("Transfer"),
    "sale": _l("Sale"),
    "return": _l("Return"),
}
REASON_LABELS = {
    AdjustmentReason.DAMAGED: _l("Damaged"),
    AdjustmentReason.EXPIRED: _l("Expired"),
    AdjustmentReason.FOUND: _l("Found"),
    AdjustmentReason.DONATED: _l("Donated"),
    "count": _l("Stock take"),
}

T = TypeVar("T")


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {
        "movement_label": lambda kind: MOVEMENT_LABELS.get(kind, kind),
        "operation_label": lambda kind: OPERATION_LABELS.get(kind, kind),
        "reason_label": lambda reason: REASON_LABELS.get(reason, reason) if reason else "",
        "at_local": lambda at: to_local(at).strftime("%Y-%m-%d %H:%M") if at else "",
        "max_quantity": MAX_QUANTITY,
    }


def _problem(exc: DomainError) -> dict[str, Any]:
    # `transactional` already rolled back; "lines" messages speak for the whole request.
    return problem_box(exc, bare=("lines",))


def _invalid_form() -> dict[str, Any]:
    return {"title": _("Please correct the marked fields."), "detail": "", "messages": []}


def _no_store(body: str, status: int) -> Any:
    # Back after a submission must draw a fresh form (and key), never resubmit the old one.
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the shop's stock ----------------------------------------------------------------


@bp.route("/stock")
@page_roles_required(*SHOP_STAFF)
def index() -> Any:
    actor = current_actor()
    if actor.shop_code:
        return redirect(url_for(".stock", code=actor.shop_code))
    return render_template("inventory/shops.html", shops=services.list_shops(db.session))


@bp.route("/shops/<string:code>/stock")
@page_roles_required(*SHOP_STAFF)
def stock(code: str) -> Any:
    actor = current_actor()
    shop = services.shop_for_staff(db.session, actor=actor, code=code)
    q = (request.args.get("q") or "").replace("\x00", "")[:100]
    low_only = request.args.get("low") == "1"
    items = services.list_stock(db.session, actor=actor, shop_code=code, q=q, low_only=low_only)
    if q or low_only:
        low = services.list_stock(db.session, actor=actor, shop_code=code, low_only=True)
    else:
        low = [item for item in items if item.low]
    return render_template(
        "inventory/stock.html",
        shop=shop,
        items=items,
        q=q,
        low_only=low_only,
        low_count=len(low),
        total_value=services.stock_value(db.session, actor=actor, shop_code=code),
    )


@bp.route("/shops/<string:code>/stock/movements")
@page_roles_required(*SHOP_STAFF)
def movements(code: str) -> Any:
    actor = current_actor()
    shop = services.shop_for_staff(db.session, actor=actor, code=code)
    sku = normalize_scanned(request.args.get("sku") or "")[:32] or None
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before < MAX_MOVEMENT_ID:
        before = None
    product = services.get_product(db.session, sku) if sku else None
    rows = services.list_movements(
        db.session,
        actor=actor,
        shop_code=code,
        sku=sku,
        limit=MOVEMENTS_PER_PAGE + 1,
        before=before,
    )
    older = rows[MOVEMENTS_PER_PAGE - 1].id if len(rows) > MOVEMENTS_PER_PAGE else None
    return render_template(
        "inventory/movements.html",
        shop=shop,
        product=product,
        movements=rows[:MOVEMENTS_PER_PAGE],
        older=older,
        other_shop_of=services.other_shop_of,
    )


@bp.route("/shops/<string:code>/stock/operations/<id:operation_id>")
@page_roles_required(*SHOP_STAFF)
def operation(code: str, operation_id: int) -> Any:
    actor = current_actor()
    found = services.get_operation(
        db.session, actor=actor, shop_code=code, operation_id=operation_id
    )
    return render_template(
        "inventory/operation.html",
        shop=services.get_shop(db.session, code),
        operation=found,
    )


@bp.route("/shops/<string:code>/stock/reconcile")
@page_roles_required(*SHOP_STAFF)
def reconcile(code: str) -> Any:
    actor = current_actor()
    shop = services.shop_for_staff(db.session, actor=actor, code=code)
    report = services.reconcile_stock(db.session, actor=actor, shop_code=code)
    return render_template("inventory/reconcile.html", shop=shop, report=report)


# --- operations that move goods --------------------------------------------------------


def _operation_page(
    code: str,
    form: OperationForm,
    template: str,
    submit: Callable[[User, list[tuple[Any, ...]]], StockOperation],
    *,
    number: str,
    skip_blank: bool = False,
    text: str | None = None,
    review: Callable[[User, list[tuple[Any, ...]]], str | dict[str, Any]] | None = None,
    **context: Any,
) -> Any:
    """Draw a stock form; on submit run it as one unit of work and show what it did.

    A refused submission is drawn again with every line it had, so nothing scanned is lost.
    `review` may hold a submission back to be confirmed: it returns what the page shows
    for confirming (the form is drawn again with it, nothing saved), or the words to say
    once it is saved.
    """
    actor = current_actor()
    shop = services.shop_for_manager(db.session, actor=actor, code=code)
    problem, status, lines = None, 200, []
    saved = _("Saved. The stock has been updated.")
    if request.method == "POST":
        try:
            lines = read_lines(request.form, number, skip_blank=skip_blank, text=text)
        except DomainError as exc:
            problem, status = _problem(exc), exc.status
        if not form.validate():
            problem, status = problem or _invalid_form(), 422
        held: dict[str, Any] | None = None
        if problem is None and review is not None:
            try:
                outcome = review(actor, lines)
            except DomainError as exc:
                db.session.rollback()
                problem, status = _problem(exc), exc.status
            else:
                if isinstance(outcome, str):
                    saved = outcome
                else:
                    held = outcome
                    context.update(held)
        if problem is None and held is None:
            try:
                done = run_unit_of_work(lambda: submit(actor, lines))
            except DomainError as exc:
                problem, status = _problem(exc), exc.status
            else:
                flash(saved, "success")
                return redirect(url_for(".operation", code=code, operation_id=done.id))
    # A fresh key per drawing: a refused submission recorded nothing, so it cannot clash.
    form.idempotency_key.data = uuid.uuid4().hex
    names = services.products_by_sku(db.session, (line[0] for line in lines))
    body = render_template(
        template,
        shop=shop,
        form=form,
        problem=problem,
        lines=[{"line": line, "product": names.get(line[0])} for line in lines],
        **context,
    )
    return _no_store(body, status)


@bp.route("/shops/<string:code>/stock/receive", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN, Role.MANAGER)
def receive(code: str) -> Any:
    form = ReceiveForm()

    def submit(actor: User, lines: list[tuple[Any, ...]]) -> StockOperation:
        return services.receive_stock(
            db.session,
            actor=actor,
            now=utcnow(),
            shop_code=code,
            lines=lines,
            reference=form.reference.data,
            supplier=form.supplier.data or None,
            idempotency_key=form.idempotency_key.data,
        )

    return _operation_page(code, form, "inventory/receive.html", submit, number="qty")


@bp.route("/shops/<string:code>/stock/adjust", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN, Role.MANAGER)
def adjust(code: str) -> Any:
    form = AdjustForm()

    def submit(actor: User, lines: list[tuple[Any, ...]]) -> StockOperation:
        return services.adjust_stock(
            db.session,
            actor=actor,
            now=utcnow(),
            shop_code=code,
            lines=lines,
            reference=form.reference.data or None,
            note=form.note.data or None,
            idempotency_key=form.idempotency_key.data,
        )

    return _operation_page(
        code,
        form,
        "inventory/adjust.html",
        submit,
        number="delta",
        text="reason",
        reasons=list(AdjustmentReason),
    )


@bp.route("/shops/<string:code>/stock/transfer", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN, Role.MANAGER)
def transfer(code: str) -> Any:
    form = TransferForm()
    form.to_shop.choices = [SelectChoice("", _("— choose —"))] + [
        SelectChoice(s.code, f"{s.name} ({s.code})")
        for s in services.list_shops(db.session)
        if s.code != code
    ]

    def submit(actor: User, lines: list[tuple[Any, ...]]) -> StockOperation:
        return services.transfer_stock(
            db.session,
            actor=actor,
            now=utcnow(),
            shop_code=code,
            to_shop=form.to_shop.data,
            lines=lines,
            reference=form.reference.data or None,
            idempotency_key=form.idempotency_key.data,
        )

    return _operation_page(code, form, "inventory/transfer.html", submit, number="qty")


@bp.route("/shops/<string:code>/stock/count", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN, Role.MANAGER)
def count(code: str) -> Any:
    form = CountForm()

    def submit(actor: User, lines: list[tuple[Any, ...]]) -> StockOperation:
        return services.count_stock(
            db.session,
            actor=actor,
            now=utcnow(),
            shop_code=code,
            lines=lines,
            reference=form.reference.data or None,
            idempotency_key=form.idempotency_key.data,
        )

    def review(actor: User, lines: list[tuple[Any, ...]]) -> str | dict[str, Any]:
        """Differences from the books are saved only once confirmed as they were shown.

        The confirmation names every counted line's books and count, so a count changed
        (or a sale at the counter) since the differences were shown asks again.
        """
        preview = services.count_preview(db.session, actor=actor, shop_code=code, lines=lines)
        differing = [line for line in preview if line.delta]
        if not differing:
            return _("Saved. Every count matched the books; the stock did not change.")
        token = count_token(preview)
        if request.form.get("confirm") == token:
            return _("Saved. The stock now holds what was counted.")
        return {"differences": differing, "confirm_token": token}

    # The sheet lists every product; what was typed comes back if the count is refused.
    counted = dict(zip(request.form.getlist("sku"), request.form.getlist("counted"), strict=False))
    items = services.list_stock(db.session, actor=current_actor(), shop_code=code)
    return _operation_page(
        code,
        form,
        "inventory/count.html",
        submit,
        number="counted",
        skip_blank=True,
        review=review,
        items=items,
        counted=counted,
        differences=None,
        confirm_token="",
    )


def count_token(lines: list[services.CountLine]) -> str:
    """What a person confirms: each counted line's books and count, in the sheet's order.

    static/inventory.js spells it the same way from the sheet (data-on-hand, the counts).
    """
    return ",".join(f"{line.expected}:{line.counted}" for line in lines)


@bp.route("/shops/<string:code>/stock/reorder-levels", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN, Role.MANAGER)
def reorder_levels(code: str) -> Any:
    actor = current_actor()
    shop = services.shop_for_manager(db.session, actor=actor, code=code)
    form = ReorderForm()
    problem, status = None, 200
    if request.method == "POST":
        if form.validate():
            try:
                lines = read_lines(request.form, "reorder_level", skip_blank=True)
                run_unit_of_work(
                    lambda: services.set_reorder_levels(
                        db.session, actor=actor, shop_code=code, lines=lines
                    )
                )
            except DomainError as exc:
                problem, status = _problem(exc), exc.status
            else:
                flash(_("The reorder levels were saved."), "success")
                return redirect(url_for(".stock", code=code))
        else:
            problem, status = _invalid_form(), 422
    items = services.list_stock(db.session, actor=actor, shop_code=code)
    return render_template(
        "inventory/reorder_levels.html", shop=shop, form=form, items=items, problem=problem
    ), status


# --- labels ------------------------------------------------------------------------------


MAX_LABEL_GOODS = 200
MAX_LABEL_COPIES = 100


@bp.route("/labels")
@page_roles_required(*SHOP_STAFF)
def labels() -> Any:
    return _labels_page()


def _labels_page(
    problem: dict[str, Any] | None = None,
    status: int = 200,
    ticked: tuple[str, ...] = (),
    copies: str = "1",
) -> Any:
    q = (request.args.get("q") or "").replace("\x00", "")[:100]
    products, total = services.search_products(db.session, q=q, active=True, limit=300)
    body = render_template(
        "inventory/labels.html",
        products=products,
        total=total,
        q=q,
        problem=problem,
        ticked=set(ticked),
        copies=copies,
    )
    return body, status


@bp.route("/labels/sheet.pdf")
@page_roles_required(*SHOP_STAFF)
def label_sheet() -> Any:
    """The ticked goods' labels as an A4 PDF; nothing ticked, or no PDF: the page says why."""
    skus = tuple(sku for sku in map(normalize_scanned, request.args.getlist("sku")) if sku)
    copies_text = normalize_scanned(request.args.get("copies") or "1")[:8]
    copies = int(copies_text) if copies_text.isdigit() else 0

    def refused(title: Any, detail: Any = "", status: int = 422) -> Any:
        problem = {"title": str(title), "detail": str(detail), "messages": []}
        return _labels_page(problem, status, skus[:MAX_LABEL_GOODS], copies_text)

    if not skus:
        return refused(_("Tick the goods whose labels you want, then make the sheet."))
    if len(skus) > MAX_LABEL_GOODS:
        return refused(_("At most %(most)s goods on one sheet; tick fewer.", most=MAX_LABEL_GOODS))
    if not 1 <= copies <= MAX_LABEL_COPIES:
        return refused(
            _("Copies of each: a whole number from 1 to %(most)s.", most=MAX_LABEL_COPIES)
        )
    try:
        products = services.products_in_order(db.session, list(skus))
        sheet = [label_for(p) for p in products for _copy in range(copies)]
        pdf = render_or_unavailable(render_label_sheet, sheet)
    except DomainError as exc:
        return refused(_("The label sheet was not made."), exc.detail or exc.title, exc.status)
    response = make_response(pdf)
    response.mimetype = "application/pdf"
    response.headers["Content-Disposition"] = 'inline; filename="labels.pdf"'
    return response


@bp.route("/labels/<string:sku>.png")
@page_roles_required(*SHOP_STAFF)
def label_image(sku: str) -> Any:
    """One product's label for a label printer; a refusal is a page in words, not JSON."""
    product = services.get_product(db.session, sku)
    png = render_or_unavailable(render_label_image, label_for(product))
    response = make_response(png)
    response.mimetype = "image/png"
    return response

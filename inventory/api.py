"""JSON API of inventory: shops, the catalogue, stock and its movements, labels."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from accounts.auth import Role, api_actor, roles_required
from core.api import Blueprint
from core.db import db, transactional, utcnow
from core.errors import Unavailable
from core.fonts import find_cjk_font
from inventory import labels, services
from inventory import schemas as s
from inventory.models import Product

blp = Blueprint("inventory_api", __name__, url_prefix="/api/v1", description="Shops, goods, stock")

ANY_ROLE: tuple[Role, ...] = ()
SHOP_STAFF = (Role.ADMIN, Role.MANAGER, Role.CLERK)
MANAGERS = (Role.ADMIN, Role.MANAGER)


# --- shops --------------------------------------------------------------------------


@blp.route("/shops", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(s.ShopIn)
@blp.response(201, s.ShopOut)
@transactional()
def create_shop(data: dict[str, Any]) -> Any:
    return services.create_shop(db.session, actor=api_actor(), now=utcnow(), **data)


@blp.route("/shops", methods=["GET"])
@roles_required(*ANY_ROLE)
@blp.response(200, s.ShopList)
def list_shops() -> Any:
    return {"shops": services.list_shops(db.session)}


@blp.route("/shops/<string:code>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(s.ShopPatch)
@blp.response(200, s.ShopOut)
@transactional()
def update_shop(data: dict[str, Any], code: str) -> Any:
    return services.update_shop(db.session, actor=api_actor(), code=code, **data)


# --- catalogue ----------------------------------------------------------------------


@blp.route("/products", methods=["POST"])
@roles_required(Role.ADMIN)
@blp.arguments(s.ProductIn)
@blp.response(201, s.ProductOut)
@transactional()
def create_product(data: dict[str, Any]) -> Any:
    return services.create_product(db.session, actor=api_actor(), now=utcnow(), **data)


@blp.route("/products", methods=["GET"])
@roles_required(*ANY_ROLE)
@blp.arguments(s.ProductQuery, location="query")
@blp.response(200, s.ProductList)
def search_products(query: dict[str, Any]) -> Any:
    rows, total = services.search_products(db.session, **query)
    return {"products": rows, "total": total}


@blp.route("/products/by-barcode/<string:barcode>", methods=["GET"])
@roles_required(*ANY_ROLE)
@blp.response(200, s.ProductOut)
def product_by_barcode(barcode: str) -> Any:
    return services.product_by_barcode(db.session, barcode)


@blp.route("/products/<string:sku>", methods=["GET"])
@roles_required(*ANY_ROLE)
@blp.response(200, s.ProductOut)
def get_product(sku: str) -> Any:
    return services.get_product(db.session, sku)


@blp.route("/products/<string:sku>", methods=["PATCH"])
@roles_required(Role.ADMIN)
@blp.arguments(s.ProductPatch)
@blp.response(200, s.ProductOut)
@transactional()
def update_product(data: dict[str, Any], sku: str) -> Any:
    return services.update_product(db.session, actor=api_actor(), now=utcnow(), sku=sku, **data)


# --- labels -------------------------------------------------------------------------


def label_for(product: Product) -> labels.Label:
    assert product.barcode is not None
    return labels.Label(
        name=product.name,
        price_text=_(
            "%(points)s points / %(unit)s", points=product.points_price, unit=product.unit
        ),
        barcode=product.barcode,
        sku=product.sku,
    )


def font_path() -> str:
    return str(find_cjk_font(current_app.config.get("CJK_FONT_PATH")))


def render_or_unavailable(render: Any, *args: Any, **kwargs: Any) -> bytes:
    try:
        return render(*args, font_path=font_path(), **kwargs)
    except labels.MissingFont as exc:
        raise Unavailable(
            _l("The label font %(path)s is missing or unreadable (CJK_FONT_PATH)", path=exc.path),
            font_path=exc.path,
        ) from exc


PDF_RESPONSE = {
    "200": {
        "description": "A4 sheet of labels",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}
PNG_RESPONSE = {
    "200": {
        "description": "One label for a thermal label printer",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@blp.route("/labels.pdf", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.arguments(s.LabelQuery, location="query")
@blp.doc(responses=PDF_RESPONSE)
def label_sheet(query: dict[str, Any]) -> Any:
    products = services.products_in_order(db.session, query["sku"])
    sheet = [label_for(p) for p in products for _copy in range(query["copies"])]
    pdf = render_or_unavailable(labels.render_label_sheet, sheet)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": 'inline; filename="labels.pdf"'},
    )


@blp.route("/products/<string:sku>/label.png", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.arguments(s.LabelImageQuery, location="query")
@blp.doc(responses=PNG_RESPONSE)
def label_image(query: dict[str, Any], sku: str) -> Any:
    product = services.get_product(db.session, sku)
    png = render_or_unavailable(labels.render_label_image, label_for(product), **query)
    return Response(png, mimetype="image/png")


# --- stock --------------------------------------------------------------------------


@blp.route("/shops/<string:code>/stock", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.arguments(s.StockQuery, location="query")
@blp.response(200, s.StockList)
def list_stock(query: dict[str, Any], code: str) -> Any:
    actor = api_actor()
    items = services.list_stock(
        db.session, actor=actor, shop_code=code, q=query["q"], low_only=query["low"]
    )
    total = services.stock_value(db.session, actor=actor, shop_code=code)
    return {"shop_code": code, "items": items, "total_value_points": total}


@blp.route("/shops/<string:code>/stock/reorder-levels", methods=["PUT"])
@roles_required(*MANAGERS)
@blp.arguments(s.ReorderIn)
@blp.response(200, s.ReorderOut)
@transactional()
def set_reorder_levels(data: dict[str, Any], code: str) -> Any:
    items = services.set_reorder_levels(
        db.session,
        actor=api_actor(),
        shop_code=code,
        lines=[(line["sku"], line["reorder_level"]) for line in data["lines"]],
    )
    return {"items": items}


@blp.route("/shops/<string:code>/stock/receipts", methods=["POST"])
@roles_required(*MANAGERS)
@blp.arguments(s.ReceiptIn)
@blp.response(201, s.OperationOut)
@transactional()
def receive_stock(data: dict[str, Any], code: str) -> Any:
    return services.receive_stock(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        shop_code=code,
        lines=[(line["sku"], line["qty"]) for line in data["lines"]],
        reference=data["reference"],
        supplier=data["supplier"],
        idempotency_key=data["idempotency_key"],
    )


@blp.route("/shops/<string:code>/stock/adjustments", methods=["POST"])
@roles_required(*MANAGERS)
@blp.arguments(s.AdjustmentIn)
@blp.response(201, s.OperationOut)
@transactional()
def adjust_stock(data: dict[str, Any], code: str) -> Any:
    return services.adjust_stock(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        shop_code=code,
        lines=[(line["sku"], line["delta"], line["reason"]) for line in data["lines"]],
        reference=data["reference"],
        note=data["note"],
        idempotency_key=data["idempotency_key"],
    )


@blp.route("/shops/<string:code>/stock/counts", methods=["POST"])
@roles_required(*MANAGERS)
@blp.arguments(s.CountIn)
@blp.response(201, s.OperationOut)
@transactional()
def count_stock(data: dict[str, Any], code: str) -> Any:
    return services.count_stock(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        shop_code=code,
        lines=[(line["sku"], line["counted"]) for line in data["lines"]],
        reference=data["reference"],
        idempotency_key=data["idempotency_key"],
    )


@blp.route("/shops/<string:code>/stock/transfers", methods=["POST"])
@roles_required(*MANAGERS)
@blp.arguments(s.TransferIn)
@blp.response(201, s.OperationOut)
@transactional()
def transfer_stock(data: dict[str, Any], code: str) -> Any:
    return services.transfer_stock(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        shop_code=code,
        to_shop=data["to_shop"],
        lines=[(line["sku"], line["qty"]) for line in data["lines"]],
        reference=data["reference"],
        idempotency_key=data["idempotency_key"],
    )


@blp.route("/shops/<string:code>/stock/operations/<id:operation_id>", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, s.OperationOut)
def get_operation(code: str, operation_id: int) -> Any:
    return services.get_operation(
        db.session, actor=api_actor(), shop_code=code, operation_id=operation_id
    )


@blp.route("/shops/<string:code>/stock/movements", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.arguments(s.MovementQuery, location="query")
@blp.response(200, s.MovementList)
def list_movements(query: dict[str, Any], code: str) -> Any:
    movements = services.list_movements(db.session, actor=api_actor(), shop_code=code, **query)
    limit = query["limit"]
    next_before = movements[-1].id if limit and len(movements) == limit else None
    return {"movements": movements, "next_before": next_before}


@blp.route("/shops/<string:code>/stock/reconcile", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, s.ReconcileOut)
def reconcile_stock(code: str) -> Any:
    return services.reconcile_stock(db.session, actor=api_actor(), shop_code=code)

"""JSON API of the counter: sales, returns, voids, the customer behind a card, the day's report."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from accounts.auth import Role, api_actor, roles_required
from core.api import Blueprint
from core.db import db, transactional, utcnow
from core.fonts import find_cjk_font
from core.timeutil import local_tz
from member_cards.signing import Keyring, keyring_from_config
from pos import schemas as s
from pos import services
from pos.services import LineRequest
from pos.signals import sale_recorded

blp = Blueprint("pos_api", __name__, url_prefix="/api/v1", description="Selling at the counter")

SHOP_STAFF = (Role.ADMIN, Role.MANAGER, Role.CLERK)
MANAGERS = (Role.ADMIN, Role.MANAGER)


def _keyring() -> Keyring:
    return keyring_from_config(current_app.config)


def _via_node(code: str) -> bool:
    """Whether the shop's own registered node passed this request through (its header)."""
    return services.is_node_of(
        db.session,
        token=request.headers.get(services.NODE_TOKEN_HEADER),
        shop_code=code,
        now=utcnow(),
    )


@blp.route("/shops/<string:code>/sales", methods=["POST"])
@roles_required(*SHOP_STAFF)
@blp.arguments(s.SaleIn)
@blp.response(201, s.SaleOut)
@transactional()
def record_sale(data: dict[str, Any], code: str) -> Any:
    """Sell: points leave the household, goods leave the shelf, one receipt; or nothing."""
    result = services.record_sale(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        tz=local_tz(),
        keyring=_keyring(),
        shop_code=code,
        lines=[
            LineRequest(qty=line["qty"], sku=line.get("sku"), barcode=line.get("barcode"))
            for line in data["lines"]
        ],
        idempotency_key=data["idempotency_key"],
        card_payload=data.get("card_payload"),
        household_id=data.get("household_id"),
        allowance_cap=current_app.config["OFFLINE_ALLOWANCE_POINTS"],
        via_node=_via_node(code),
    )
    if not result.replayed:
        # In the sale's transaction: whatever a receiver adds (the receipt's print job)
        # commits with the sale or not at all.
        sale_recorded.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            session=db.session,
            sale=result.sale,
        )
    return result.view


@blp.route("/shops/<string:code>/sales", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.arguments(s.SaleQuery, location="query")
@blp.response(200, s.SaleList)
def find_sales(query: dict[str, Any], code: str) -> Any:
    """A shop's sales by receipt number, household or business day, newest first."""
    sales = services.find_sales(
        db.session,
        actor=api_actor(),
        shop_code=code,
        receipt_no=query["receipt_no"],
        household_id=query["household_id"],
        day=query["date"],
    )
    return {"sales": sales}


@blp.route("/shops/<string:code>/customer", methods=["POST"])
@roles_required(*SHOP_STAFF)
@blp.arguments(s.CustomerIn)
@blp.response(200, s.CustomerOut)
def find_customer(data: dict[str, Any], code: str) -> Any:
    """The household behind a scanned card, with what it may spend here."""
    return services.find_customer(
        db.session,
        actor=api_actor(),
        shop_code=code,
        card_payload=data["card_payload"],
        keyring=_keyring(),
        allowance_cap=current_app.config["OFFLINE_ALLOWANCE_POINTS"],
        via_node=_via_node(code),
    )


@blp.route("/shops/<string:code>/goods/<string:scanned>", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, s.GoodsOut)
def find_goods(code: str, scanned: str) -> Any:
    """The product behind a scanned barcode or typed sku, with this shop's stock of it."""
    return services.find_goods(db.session, actor=api_actor(), shop_code=code, code=scanned)


@blp.route("/sales/<id:sale_id>", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.response(200, s.SaleDetailOut)
def get_sale(sale_id: int) -> Any:
    return services.get_sale(db.session, actor=api_actor(), sale_id=sale_id)


@blp.route("/sales/<id:sale_id>/receipt", methods=["GET"])
@roles_required(*SHOP_STAFF)
@blp.arguments(s.ReceiptQuery, location="query")
@blp.doc(
    responses={
        "200": {
            "description": "format=text: the receipt as plain text (58 mm: width 32, 80 mm: "
            "width 48). format=escpos: the exact ESC/POS bytes for a `paper` mm printer, in "
            "`mode` text (GBK in the printer's Chinese mode, a line holding characters outside "
            "GBK as a raster image in its place) or image (a raster image, for "
            "printers without a Chinese font), ending in feed and cut. format=png: the "
            "receipt as image mode prints it.",
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "503": {"description": "format=png or mode=image and no Chinese font is installed"},
    }
)
def sale_receipt(query: dict[str, Any], sale_id: int) -> Any:
    """The receipt of a sale, as text, ESC/POS bytes or a PNG; `copy=true` marks a reprint."""
    common = {"actor": api_actor(), "sale_id": sale_id, "tz": local_tz(), "copy": query["copy"]}
    if query["format"] == "text":
        text = services.sale_receipt(db.session, width=query["width"], **common)
        return Response(text, mimetype="text/plain")
    image = query["format"] == "png" or query["mode"] == "image"
    # Only an image needs the font; text mode prints in the printer's own.
    font = str(find_cjk_font(current_app.config.get("CJK_FONT_PATH"))) if image else None
    if query["format"] == "png":
        png = services.sale_receipt_png(
            db.session, paper_mm=query["paper"], font_path=font, **common
        )
        return Response(png, mimetype="image/png")
    data = services.sale_receipt_escpos(
        db.session, paper_mm=query["paper"], mode=query["mode"], font_path=font, **common
    )
    return Response(data, mimetype="application/octet-stream")


@blp.route("/sales/<id:sale_id>/returns", methods=["POST"])
@roles_required(*MANAGERS)
@blp.arguments(s.ReturnIn)
@blp.response(201, s.ReturnOut)
@transactional()
def record_return(data: dict[str, Any], sale_id: int) -> Any:
    """Goods back against a sale: points refunded, goods back on the shelf."""
    return services.record_return(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        tz=local_tz(),
        sale_id=sale_id,
        lines=[(line["sku"], line["qty"]) for line in data["lines"]],
        reason=data["reason"],
        idempotency_key=data["idempotency_key"],
    )


@blp.route("/sales/<id:sale_id>/void", methods=["POST"])
@roles_required(*MANAGERS)
@blp.arguments(s.VoidIn)
@blp.response(201, s.ReturnOut)
@transactional()
def void_sale(data: dict[str, Any], sale_id: int) -> Any:
    """Undo a whole sale of today (managers): every point back, every item back."""
    return services.void_sale(
        db.session,
        actor=api_actor(),
        now=utcnow(),
        tz=local_tz(),
        sale_id=sale_id,
        reason=data["reason"],
        idempotency_key=data["idempotency_key"],
    )


@blp.route("/shops/<string:code>/reports/daily", methods=["GET"])
@roles_required(*MANAGERS)
@blp.arguments(s.ReportQuery, location="query")
@blp.response(200, s.DailyReportOut)
@blp.doc(
    responses={
        "200": {
            "description": "The day's reconciliation (JSON), or as CSV with format=csv",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/DailyReportOut"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
)
def daily_report(query: dict[str, Any], code: str) -> Any:
    """The day's reconciliation of the shop's sales against the central ledger."""
    report = services.daily_report(
        db.session, actor=api_actor(), shop_code=code, day=query["date"], tz=local_tz()
    )
    if query["format"] == "csv":
        return Response(
            services.daily_report_csv(report),
            mimetype="text/csv",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="report-{code}-{report.day.isoformat()}.csv"'
                )
            },
        )
    return report

"""HTML pages of receipt printers: the county office sets up each shop's printer."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from accounts.auth import Role, current_actor, page_roles_required
from core.db import db, run_unit_of_work, utcnow
from core.errors import DomainError
from core.templating import PRINTER_KIND_LABELS, problem_box
from inventory import services as inventory
from printing import services, worker
from printing.devices import KINDS

bp = Blueprint("pos_printers", __name__)


# The form's fields as its labels say, for messages about them.
FIELD_LABELS = {
    "kind": _l("Connection"),
    "host": _l("Host"),
    "port": _l("Port"),
    "timeout": _l("Timeout (seconds)"),
    "vendor_id": _l("USB vendor id"),
    "product_id": _l("USB product id"),
    "in_ep": _l("USB in endpoint"),
    "out_ep": _l("USB out endpoint"),
    "devfile": _l("Device"),
    "baudrate": _l("Baud rate"),
    "printer_name": _l("Printer name"),
    "paper_mm": _l("Paper width"),
    "mode": _l("Chinese"),
    "profile": _l("Printer model"),
}

# Form field per connection setting; the kind decides which of them count.
CONNECTION_FIELDS = (
    "host",
    "port",
    "timeout",
    "vendor_id",
    "product_id",
    "in_ep",
    "out_ep",
    "devfile",
    "baudrate",
    "printer_name",
)


@bp.route("/printers")
@page_roles_required(Role.ADMIN)
def printers() -> Any:
    shops = inventory.list_shops(db.session)
    defaults = current_app.config.get("PRINTERS")
    rows = []
    for shop in shops:
        try:
            settings = services.printer_settings(db.session, shop, defaults=defaults)
            problem = None
        except DomainError as exc:
            settings, problem = None, exc.detail
        rows.append({"shop": shop, "printer": settings, "problem": problem})
    # The shops' nodes, beside their printers: the office's one page about shop PCs. The
    # nodes package hands its overview in (nodes.extension): printing does not import it.
    overview = current_app.extensions.get("shop_node_overview")
    node_rows, node_exceptions = overview(db.session, current_actor()) if overview else ([], [])
    return render_template(
        "printing/printers.html",
        rows=rows,
        kind_labels=PRINTER_KIND_LABELS,
        nodes=node_rows,
        node_exceptions=node_exceptions,
    )


@bp.route("/printers/<string:code>", methods=["GET", "POST"])
@page_roles_required(Role.ADMIN)
def printer_edit(code: str) -> Any:
    actor = current_actor()
    shop = inventory.get_shop(db.session, code)
    defaults = current_app.config.get("PRINTERS")
    printers = worker.state().printers
    problem = None
    status = 200
    if request.method == "POST":
        form = request.form
        if form.get("action") == "remove":
            run_unit_of_work(
                lambda: services.remove_printer(
                    db.session, actor=actor, shop_code=code, printers=printers
                )
            )
            flash(_("The printer of %(shop)s was removed.", shop=shop.name), "success")
            return redirect(url_for(".printers"))
        values = _read_form(form)
        try:
            run_unit_of_work(
                lambda: services.save_printer(
                    db.session,
                    actor=actor,
                    shop_code=code,
                    now=utcnow(),
                    printers=printers,
                    **values,
                )
            )
        except DomainError as exc:
            problem, status = _problem(exc), exc.status
        else:
            flash(_("The printer of %(shop)s was saved.", shop=shop.name), "success")
            return redirect(url_for(".printers"))
        current = values
    else:
        try:
            settings = services.printer_settings(db.session, shop, defaults=defaults)
        except DomainError as exc:
            settings, problem = None, _problem(exc)
        current = _settings_values(settings)
    body = render_template(
        "printing/printers_edit.html",
        shop=shop,
        values=current,
        kinds=KINDS,
        kind_labels=PRINTER_KIND_LABELS,
        problem=problem,
        agent_url=request.host_url.rstrip("/"),
    )
    return body, status


def _problem(exc: DomainError) -> dict[str, Any]:
    """The refusal's box, each field named by its label on the form, not by its code."""
    errors = exc.extra.get("errors") or {}
    exc.extra["errors"] = {
        str(FIELD_LABELS.get(name, name)): texts for name, texts in errors.items()
    }
    return problem_box(exc)


def _read_form(form: Any) -> dict[str, Any]:
    paper = form.get("paper_mm", "58")
    return {
        "kind": (form.get("kind") or "").strip(),
        "connection": {
            key: form.get(key, "").strip() for key in CONNECTION_FIELDS if form.get(key, "").strip()
        },
        "paper_mm": int(paper) if paper.isdigit() else 0,
        "mode": form.get("mode", "text"),
        "profile": (form.get("profile") or "").strip()[:200] or None,
        "via_agent": form.get("via_agent") == "on",
        "enabled": form.get("enabled") == "on",
    }


def _settings_values(settings: services.PrinterSettings | None) -> dict[str, Any]:
    if settings is None:
        return {
            "kind": "network",
            "connection": {"port": 9100},
            "paper_mm": 58,
            "mode": "text",
            "profile": None,
            "via_agent": False,
            "enabled": True,
        }
    connection = dict(settings.connection)
    for key in ("vendor_id", "product_id", "in_ep", "out_ep"):
        if isinstance(connection.get(key), int):
            connection[key] = f"0x{connection[key]:04x}"
    return {
        "kind": settings.kind,
        "connection": connection,
        "paper_mm": settings.paper_mm,
        "mode": settings.mode,
        "profile": settings.profile,
        "via_agent": settings.via_agent,
        "enabled": settings.enabled,
        "source": settings.source,
    }

"""The node's local app: the county's own app factory, answering the counter from the node's store.

Offline, the gateway hands requests here. The app is `config.app.create_app` pointed at
the node's SQLite file, so sign-in, the counter page and the customer display are the
county's own views and templates (reading the local `users`, `api_tokens` and `shops`
that the syncer keeps), and every `url_for` in them resolves exactly as on the county.
The counter's API endpoints are answered by thin views over nodes.local.offline; every
other endpoint says plainly that it waits for the line (503 `unavailable`), returns and
voids with their own sentence. Its session cookie is `node_session`, beside the county's
`session`, so a browser signed in through the node is signed in at both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import marshmallow as ma
from flask import (
    Flask,
    current_app,
    flash,
    jsonify,
    make_response,
    render_template,
    request,
    session,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from sqlalchemy import event

from accounts.auth import User, api_actor
from accounts.views import LoginForm
from config.app import create_app
from core.db import db, run_unit_of_work
from core.errors import Conflict, Unavailable, ValidationFailed
from member_cards import schemas as card_schemas
from nodes.local import clock, offline, signins
from pos import schemas as pos_schemas
from pos.receipts.layout import PAPER

log = logging.getLogger(__name__)

SESSION_COOKIE = "node_session"
# The county's pages and endpoints the node serves as they are, from the local tables.
COUNTY_VIEWS = {"static", "home", "auth.login", "auth.logout", "pos.counter", "pos.counter_display"}
# Endpoints whose work needs the county's books: a clear sentence of their own offline.
RETURNS_AND_VOIDS = {"pos_api.record_return", "pos_api.void_sale", "pos.return_goods", "pos.void"}


class NodeRuntime:
    """What the gateway and the local views share: the store, the syncer, the node's settings."""

    def __init__(self, app: Flask, *, shop_code: str, syncer: Any) -> None:
        self.app = app
        self.shop_code = shop_code
        self.syncer = syncer

    @property
    def online(self) -> bool:
        return bool(self.syncer is not None and self.syncer.online)

    def _unit(self, operation: Callable[[], Any]) -> Any:
        with self.app.app_context():
            return run_unit_of_work(operation)

    # --- what the gateway tells us (gateway.Learning) -----------------------------------

    def pending_sales(self) -> int:
        with self.app.app_context():
            return offline.pending_sales(db.session)

    def sign_in_accepted(self, username: str, password: str, now: datetime) -> list[str]:
        """Remember the sign-in; the Set-Cookie of a local session for the same person."""

        def accept() -> int | None:
            user = signins.accept_sign_in(db.session, username=username, password=password, now=now)
            return None if user is None else user.id

        user_id = self._unit(accept)
        if user_id is None:
            return []
        with self.app.test_request_context("/login", method="POST"):
            local = db.session.get(User, user_id)
            login_user(local)
            response = self.app.response_class()
            self.app.session_interface.save_session(self.app, session, response)
            return response.headers.getlist("Set-Cookie")

    def token_accepted(
        self, username: str, password: str, token: str, expires_at: str | None, now: datetime
    ) -> None:
        until = _parse_time(expires_at)
        if until is None:
            return
        self._unit(
            lambda: (
                signins.accept_sign_in(db.session, username=username, password=password, now=now)
                and signins.accept_token(
                    db.session, username=username, token=token, expires_at=until, now=now
                )
            )
        )

    def online_sale(self, answer: dict[str, Any], now: datetime) -> None:
        self._unit(lambda: offline.note_online_sale(db.session, answer, now=now))

    def signed_out(self) -> list[str]:
        with self.app.test_request_context("/logout", method="POST"):
            response = self.app.response_class()
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response.headers.getlist("Set-Cookie")


def create_local_app(
    *,
    database_url: str,
    home: Path,
    shop_code: str,
    syncer: Any,
    max_hours: int = 72,
    extra: dict[str, Any] | None = None,
) -> Flask:
    """The local app over the node's SQLite file; `syncer` says whether the county is there."""
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "HOME": str(home),
        "SESSION_COOKIE_NAME": SESSION_COOKIE,
        "NODE_MODE": True,
        "NODE_SHOP_CODE": shop_code,
        "OFFLINE_MAX_HOURS": max_hours,
        # The county counts sign-in attempts; the node's own page is for its shop's staff.
        "RATELIMIT_ENABLED": False,
    }
    config.update(extra or {})
    app = create_app(config)
    with app.app_context():
        _durable(db.engine)
    runtime = NodeRuntime(app, shop_code=shop_code, syncer=syncer)
    app.extensions["shop_node"] = runtime
    _replace_views(app)
    app.add_url_rule("/node/status", "node.status", node_status)
    return app


def _durable(engine: Any) -> None:
    # An offline sale the counter was told about must survive a power cut: the county's
    # NORMAL (set in core.db) would lose the last commits with the power; FULL does not.
    @event.listens_for(engine, "connect")
    def _full(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


def runtime() -> NodeRuntime:
    return current_app.extensions["shop_node"]


# --- the views ----------------------------------------------------------------------------


def _replace_views(app: Flask) -> None:
    own: dict[str, Callable[..., Any]] = {
        "pos_api.find_customer": find_customer,
        "pos_api.find_goods": find_goods,
        "pos_api.record_sale": record_sale,
        "pos_api.get_sale": get_sale,
        "pos_api.sale_receipt": sale_receipt,
        "pos_printing_api.sale_print": sale_print,
        "pos_printing_api.get_printer": get_printer,
        "cards_api.resolve_card": resolve_card,
        "auth.login": _guard_login(app.view_functions["auth.login"]),
    }
    for endpoint in list(app.view_functions):
        if endpoint in own:
            app.view_functions[endpoint] = own[endpoint]
        elif endpoint in RETURNS_AND_VOIDS:
            app.view_functions[endpoint] = returns_wait
        elif endpoint not in COUNTY_VIEWS and not endpoint.endswith(".static"):
            app.view_functions[endpoint] = needs_line
    app.view_functions["auth.logout"] = _guard_logout(app.view_functions["auth.logout"])


def _load(schema: ma.Schema, body: Any = None) -> dict[str, Any]:
    """A JSON body (or the query string's dict) read by the county's own schema."""
    if body is None:
        body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed(_l("a JSON object is required"))
    try:
        return schema.load(body)
    except ma.ValidationError as exc:
        raise ValidationFailed(errors=exc.messages) from exc


def _staff_of(code: str) -> User:
    actor = api_actor()
    actor.require_shop_staff(code.strip().upper())
    return actor


def find_customer(code: str) -> Any:
    actor = _staff_of(code)
    data = _load(pos_schemas.CustomerIn())
    found = offline.find_customer(
        db.session, shop_code=_shop(actor, code), card_payload=data["card_payload"], now=clock.now()
    )
    return jsonify(found)


def resolve_card() -> Any:
    api_actor()
    data = _load(card_schemas.ResolveIn())
    return jsonify(offline.resolve_card(db.session, card_payload=data["payload"]))


def find_goods(code: str, scanned: str) -> Any:
    actor = _staff_of(code)
    return jsonify(offline.find_goods(db.session, shop_code=_shop(actor, code), code=scanned))


def record_sale(code: str) -> Any:
    actor = _staff_of(code)
    data = _load(pos_schemas.SaleIn())
    shop_code = _shop(actor, code)
    now = clock.now()

    def sell() -> dict[str, Any]:
        return offline.sell_offline(
            db.session,
            username=actor.username,
            shop_code=shop_code,
            lines=data["lines"],
            idempotency_key=data["idempotency_key"],
            card_payload=data.get("card_payload"),
            household_id=data.get("household_id"),
            now=now,
            max_hours=int(current_app.config["OFFLINE_MAX_HOURS"]),
        )

    answer = run_unit_of_work(sell)
    syncer = runtime().syncer
    # Sent at once if the line is back (the gateway sold here because sales waited);
    # with the line down, the syncer's own round probes it, not every sale.
    if syncer is not None and syncer.online:
        syncer.wake()
    return make_response(jsonify(answer), 201)


def get_sale(sale_id: int) -> Any:
    api_actor()
    return jsonify(offline.get_offline_sale(db.session, sale_id))


def sale_receipt(sale_id: int) -> Any:
    api_actor()
    query = _load(pos_schemas.ReceiptQuery(), request.args.to_dict())
    fmt = query["format"]
    paper = query["paper"] if fmt != "text" else (80 if query["width"] == 48 else 58)
    lines = offline.receipt_lines(db.session, sale_id, columns=PAPER[paper][0])
    # The read's transaction holds SQLite's write lock: end it before rendering.
    db.session.rollback()
    content, mimetype = offline.render_receipt(lines, fmt=fmt, paper=paper, mode=query["mode"])
    return current_app.response_class(content, mimetype=mimetype)


def sale_print(sale_id: int) -> Any:
    api_actor()
    return jsonify(offline.print_state(db.session, sale_id))


def get_printer(code: str) -> Any:
    # The county's printer queue is out of reach; each offline sale's own print state
    # (sale_print) tells the clerk whether its receipt came out.
    actor = _staff_of(code)
    return jsonify({"shop_code": _shop(actor, code), "configured": False, "queued": 0})


def node_status() -> Any:
    """GET /node/status (API.md): whether the county answers, and what waits for it."""
    node = runtime()
    body = offline.node_status(db.session, now=clock.now(), online=node.online)
    db.session.rollback()
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


class LineDown(Unavailable):
    """503 `unavailable`: what the node cannot do without the county's books."""

    title = _l("The line to the county is down")


def needs_line(**_: Any) -> Any:
    raise LineDown(_l("This waits until the line to the county is back. Selling goes on."))


def returns_wait(**_: Any) -> Any:
    raise LineDown(
        _l("Returns and voids wait until the line to the county is back: the sale is there.")
    )


def _guard_login(view: Callable[..., Any]) -> Callable[..., Any]:
    def login() -> Any:
        if request.method == "POST":
            username = (request.form.get("username") or "").strip()
            if username and not signins.sign_in_allowed(
                db.session, username=username, now=clock.now()
            ):
                flash(
                    _(
                        "The line to the county is down: only someone who signed in here "
                        "while it was up can sign in now."
                    ),
                    "error",
                )
                return render_template("auth/login.html", form=LoginForm()), 401
        return view()

    return login


def _guard_logout(view: Callable[..., Any]) -> Callable[..., Any]:
    def logout() -> Any:
        waiting = offline.pending_sales(db.session)
        if waiting and current_user.is_authenticated:
            body = render_template("node/signout_refused.html", pending=waiting)
            return make_response(body, 409)
        return view()

    return logout


def _shop(actor: User, code: str) -> str:
    shop_code = runtime().shop_code
    if code.strip().upper() != shop_code:
        raise Conflict(_l("this counter PC sells for shop %(code)s only", code=shop_code))
    return shop_code


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


__all__ = ["NodeRuntime", "create_local_app"]

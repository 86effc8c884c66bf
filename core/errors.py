"""Typed domain errors, and their one mapping to problem+json (API) or an error page."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, json, render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A refusal the user can act on. Services raise these; only this module renders them."""

    status = 400
    code = "validation_error"
    title = _l("The request cannot be carried out")

    def __init__(self, detail: Any = None, **extra: Any) -> None:
        super().__init__(str(detail) if detail is not None else self.code)
        self.detail = detail
        self.extra = extra


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    title = _l("The request is not valid")

    def __init__(self, detail: Any = None, errors: dict[str, Any] | None = None) -> None:
        super().__init__(detail, **({"errors": errors} if errors else {}))


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = _l("Not found")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = _l("Conflicts with what is already recorded")


class IdempotencyConflict(DomainError):
    status = 409
    code = "idempotency_conflict"
    title = _l("This idempotency key was already used for a different request")


class InsufficientPoints(DomainError):
    status = 409
    code = "insufficient_points"
    title = _l("Not enough points")

    def __init__(
        self,
        *,
        needed: int,
        available: int,
        floor: int = 0,
        reserved: int = 0,
        reserved_for: str | None = None,
        allowance: int | None = None,
        offline: bool = False,
    ) -> None:
        # `reserved`: points the county keeps back for the home shop's node (online sales
        # may not take them); `offline`: a sale a node made offline, beyond its allowance.
        spendable = (allowance or 0) if offline else max(available - floor - reserved, 0)
        detail: Any
        if offline:
            detail = _l(
                "%(needed)s points are more than the offline allowance of %(allowance)s "
                "points at this shop.",
                needed=needed,
                allowance=allowance or 0,
            )
        elif reserved > 0:
            detail = _l(
                "%(needed)s points are needed but only %(available)s can be spent here: "
                "%(reserved)s points are kept for %(shop)s to sell while offline.",
                needed=needed,
                available=spendable,
                reserved=reserved,
                shop=reserved_for or "",
            )
        else:
            detail = _l(
                "%(needed)s points are needed but only %(available)s can be spent.",
                needed=needed,
                available=spendable,
            )
        extra: dict[str, Any] = {}
        if reserved:
            extra["reserved"] = reserved
        if offline:
            extra["offline_allowance"] = allowance or 0
        super().__init__(
            detail,
            needed=needed,
            available=spendable,
            balance=available,
            floor=floor,
            shortfall=needed - spendable,
            **extra,
        )


class OutOfStock(DomainError):
    status = 409
    code = "out_of_stock"
    title = _l("Not enough stock")

    def __init__(self, *, lines: list[dict[str, Any]]) -> None:
        # Every short line at once, so the clerk fixes the basket in one go.
        goods = "; ".join(
            str(
                _l(
                    "%(name)s (%(sku)s): %(requested)s wanted, %(on_hand)s on hand",
                    name=line["name"],
                    sku=line["sku"],
                    requested=line["requested"],
                    on_hand=line["on_hand"],
                )
            )
            for line in lines
        )
        super().__init__(_l("Not enough stock: %(goods)s", goods=goods), lines=lines)


class ReturnExceedsSale(DomainError):
    """More goods brought back than the sale sold and has not yet taken back."""

    status = 409
    code = "return_exceeds_sale"
    title = _l("More than was sold")


class UnknownProduct(DomainError):
    status = 404
    code = "unknown_product"
    title = _l("Unknown product")


class InvalidCard(DomainError):
    """A card payload that does not verify: altered, forged, truncated or not a card."""

    status = 422
    code = "invalid_card"
    title = _l("This is not a valid member card")


class UnknownCard(DomainError):
    """A genuine payload whose card is not on record."""

    status = 404
    code = "unknown_card"
    title = _l("This member card is not on record")


class CardRevoked(DomainError):
    """A card that was reported lost or replaced by a newer one."""

    status = 410
    code = "card_revoked"
    title = _l("This member card was revoked or replaced")


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    title = _l("Please sign in")


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = _l("You may not do this")


class Unavailable(DomainError):
    status = 503
    code = "unavailable"
    title = _l("The database is unavailable; please try again")


# HTTP errors raised by Flask, Werkzeug or webargs, mapped onto API.md's codes.
_HTTP_CODES = {
    400: "validation_error",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "validation_error",
    409: "conflict",
    413: "validation_error",
    415: "validation_error",
    422: "validation_error",
    # Only signing in is rate limited on the API: too many tries is a refused sign-in.
    429: "unauthenticated",
}


def _is_api_request() -> bool:
    return request.path.startswith("/api/")


def problem_body(
    status: int, code: str, title: str, detail: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A problem+json document (RFC 9457) as a plain dict."""
    body: dict[str, Any] = {
        "type": f"urn:integrity-pos:problem:{code}",
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
        "instance": request.path,
    }
    body.update(_plain(extra or {}))
    return body


def domain_problem(exc: DomainError) -> dict[str, Any]:
    """A domain refusal as the problem+json document its response would carry."""
    return problem_body(
        exc.status, exc.code, str(exc.title), str(exc.detail or exc.title), exc.extra
    )


def problem_response(
    status: int, code: str, title: str, detail: str, extra: dict[str, Any] | None = None
) -> Response:
    body = problem_body(status, code, title, detail, extra)
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        response.headers["Retry-After"] = "2"
    return response


def _plain(value: Any) -> Any:
    """Lazy translated strings (and anything else odd) become plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _render(status: int, code: str, title: Any, detail: Any, extra: dict[str, Any]) -> Response:
    if _is_api_request():
        return problem_response(status, code, str(title), str(detail or title), extra)
    page = render_template(
        "errors/error.html", status=status, code=code, title=title, detail=detail, extra=extra
    )
    return current_app.response_class(page, status=status, mimetype="text/html")


def handle_domain_error(exc: DomainError) -> Response:
    return _render(exc.status, exc.code, exc.title, exc.detail or exc.title, exc.extra)


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "validation_error" if status < 500 else "internal_error")
    extra: dict[str, Any] = {}
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    if messages:
        # webargs nests by location ("json", "query"); callers want the field names.
        if isinstance(messages, dict) and len(messages) == 1:
            messages = next(iter(messages.values()))
        extra["errors"] = messages
    title = HTTP_TITLES.get(status, exc.name)
    detail = data.get("message") or exc.description or exc.name
    if messages and status in (400, 422):
        detail = _l("Some fields are missing or not valid; see errors.")
    response = _render(status, code, title, detail, extra)
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    return response


def handle_database_unavailable(exc: DBAPIError) -> Response:
    # Lost connections are retryable for the client; a full or read-only disk needs the
    # office, but is no bug either; anything else is a real bug.
    if _cannot_store(exc):
        log.error("database cannot store: %s", exc.orig)
        return handle_domain_error(
            Unavailable(
                _l(
                    "The database cannot store anything now (the disk is full or read-only). "
                    "Nothing was recorded; please call the county office."
                )
            )
        )
    if getattr(exc, "connection_invalidated", False) or _looks_disconnected(exc):
        log.warning("database unavailable: %s", exc.orig)
        err = Unavailable()
        return handle_domain_error(err)
    return handle_unexpected(exc)


def _cannot_store(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    # 53xxx: PostgreSQL's insufficient resources (53100 disk full); 25006: read-only.
    return (
        sqlstate.startswith("53")
        or sqlstate == "25006"
        or any(
            marker in text
            for marker in ("database or disk is full", "readonly database", "disk i/o error")
        )
    )


def _looks_disconnected(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        marker in text
        for marker in (
            "connection refused",
            "server closed",
            "terminating connection",
            "could not connect",
            "connection is closed",
            "connection is lost",
            "database is locked",
            # PostgreSQL being restarted: a shutdown in progress, or not yet up again.
            "shutting down",
            "starting up",
            "in recovery mode",
        )
    ) or getattr(exc.orig, "sqlstate", None) in {
        "57P01",
        "57P02",
        "57P03",
        "08000",
        "08003",
        "08006",
    }


def handle_data_error(exc: DataError) -> Response:
    # The database refused a value the schemas let through (out of range, NUL, too long):
    # the request was malformed, and API.md promises no request answers 500.
    from core.db import db

    log.warning("database refused a value on %s %s: %s", request.method, request.path, exc.orig)
    db.session.rollback()
    return handle_domain_error(ValidationFailed(_l("a value is out of range or not valid text")))


def handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _render(
        500,
        "internal_error",
        _l("Something went wrong on our side"),
        _l("The error was logged. Nothing was recorded; please try again."),
        {},
    )


HTTP_TITLES: dict[int, Any] = {
    400: _l("The request is not valid"),
    401: _l("Please sign in"),
    403: _l("You may not do this"),
    404: _l("Not found"),
    405: _l("This method is not allowed here"),
    409: _l("Conflicts with what is already recorded"),
    413: _l("The upload is too large"),
    415: _l("Unsupported content type"),
    422: _l("The request is not valid"),
    429: _l("Too many requests; please wait a moment"),
}

bp = Blueprint("errors", __name__)
bp.app_errorhandler(DomainError)(handle_domain_error)
bp.app_errorhandler(HTTPException)(handle_http_exception)
bp.app_errorhandler(OperationalError)(handle_database_unavailable)
# psycopg reports some lost connections as interface errors ("the connection is lost").
bp.app_errorhandler(InterfaceError)(handle_database_unavailable)
bp.app_errorhandler(DataError)(handle_data_error)
bp.app_errorhandler(Exception)(handle_unexpected)

"""What every page's layout needs: language links, role names, local time, friendly errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest, MethodNotAllowed, NotFound, RequestEntityTooLarge

from core.errors import DomainError
from core.timeutil import to_local

ROLE_LABELS = {
    "admin": _l("County office"),
    "cadre": _l("Village cadre"),
    "manager": _l("Shop manager"),
    "clerk": _l("Shop clerk"),
    "reporter": _l("Village group leader"),
    "shop_node": _l("Shop node"),
}
# How the county office names each way of reaching a printer (the printers page and the
# audit log); the codes stay in the API, config.toml and the print agent's --printer.
PRINTER_KIND_LABELS = {
    "network": _l("Network"),
    "usb": _l("USB"),
    "serial": _l("Serial port"),
    "file": _l("Device file"),
    "cups": _l("CUPS print service"),
    "lp": _l("Linux print command"),
    "win32": _l("Windows printer"),
}
# Werkzeug's and Flask-WTF's own error texts are English only; people get these instead.
_HTTP_DETAILS = {
    BadRequest.description: _l(
        "The browser sent something this page does not understand. "
        "Go back, reload the page and try again."
    ),
    NotFound.description: _l(
        "There is no page at this address; the link may be out of date or incomplete."
    ),
    MethodNotAllowed.description: _l(
        "This page cannot be used that way. Go back and use the page's own buttons."
    ),
    RequestEntityTooLarge.description: _l(
        "The file is too large. Split it into smaller files and upload them one by one."
    ),
}
_CSRF_DETAIL = _l(
    "This form has expired or was not sent from this site. "
    "Go back, reload the page and submit it again."
)


def _layout() -> dict[str, Any]:
    """What base.html needs on every page, error pages of other blueprints included."""
    return {
        "current_locale": str(get_locale()),
        "lang_url": _lang_url,
        "role_label": lambda role: ROLE_LABELS.get(role, role),
        "error_detail": _error_detail,
    }


def _lang_url(code: str) -> str:
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    args.append(("lang", code))
    return f"{request.path}?{urlencode(args)}"


def _error_detail(detail: Any) -> str:
    text = "" if detail is None else str(detail)
    if "CSRF" in text:
        return str(_CSRF_DETAIL)
    return str(_HTTP_DETAILS.get(text, text))


def _local_time(at: datetime | None) -> str:
    return to_local(at).strftime("%Y-%m-%d %H:%M") if at else ""


def _signed(points: int) -> str:
    return f"{points:+d}"


def problem_box(
    exc: DomainError, form: Any = None, *, bare: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A service's refusal as the message box of templates/_macros.html.

    Field errors land on the form's own fields where it has them; the rest are listed,
    prefixed by the field's name unless it is one of `bare` (whole-request messages).
    """
    loose: list[str] = []
    for name, messages in (exc.extra.get("errors") or {}).items():
        texts = [str(m) for m in (messages if isinstance(messages, list | tuple) else [messages])]
        if form is not None and name in form and name != "csrf_token":
            form[name].errors = [*form[name].errors, *texts]
        elif name in bare or name == "_schema":
            loose.extend(texts)
        else:
            loose.extend(f"{name}: {t}" for t in texts)
    detail = str(exc.detail) if exc.detail is not None else ""
    return {
        "title": str(exc.title),
        "detail": detail if detail and detail != str(exc.title) else "",
        "messages": loose,
    }


def init_app(app: Flask) -> None:
    app.context_processor(_layout)
    app.add_template_filter(_local_time, "local_time")
    app.add_template_filter(_signed, "signed")

"""Pages as a browser sends them back: a form's inputs, its CSRF token, signing in."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.factories import PASSWORD

_INPUT = re.compile(r"<input\b[^>]*>", re.S)
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')


def _inputs(page: str) -> list[dict[str, str]]:
    return [dict(_ATTR.findall(tag)) for tag in _INPUT.findall(page)]


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a page (CSRF token, idempotency key), as a browser would send."""
    fields: dict[str, str] = {}
    for attrs in _inputs(page):
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields.setdefault(attrs["name"], html.unescape(attrs.get("value", "")))
    return fields


def form_value(page: str, name: str) -> str:
    """The value of the first input with this name in a page (the CSRF token, a key)."""
    for attrs in _inputs(page):
        if attrs.get("name") == name:
            return html.unescape(attrs.get("value", ""))
    raise AssertionError(f"no input {name} in the page")


def csrf_token(client: Any, url: str = "/login") -> str:
    """The CSRF token of the page at url, bound to the client's session."""
    return form_value(client.get(url).get_data(as_text=True), "csrf_token")


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    """Submit the login page as a person would; the answer, whatever it is."""
    token = csrf_token(client, "/login")
    return client.post(
        "/login", data={"csrf_token": token, "username": username, "password": password}
    )


def sign_in(client: Any, username: str, password: str = PASSWORD) -> str:
    """Sign in through the login page, which must let the user in; the session's CSRF token."""
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "username": username, "password": password}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return token

"""The node's front door: pass each request to the county, or to the local app when it is away.

A browser at the shop talks only to the node. While the county answers, every request
goes there unchanged (its cookies, its CSRF tokens, its pages) and the county's answer
comes back unchanged, so online the node adds nothing a clerk could notice. When the
county does not answer (connection refused or reset, a timeout, 502/503/504 from a proxy
or from the county itself), the node marks itself offline and the same request goes to
the local app, which sells from the node's own store. The syncer marks it online again
as soon as the county answers its next round.

Three things are always local, online or not: `/node/...` (the node's own status),
paths naming an offline sale (`/api/v1/sales/<id>` with an id of the node's own range,
which the county has never seen), and sign-out while offline sales still wait to reach
the county (refused, so nobody walks away from a shop whose sales are not yet home).

Passing through also lets the node learn what it needs offline: a sign-in or token the
county accepted (nodes.local.signins), and a sale the county made for one of its
households (its allowance follows the balance the county answered).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from nodes.local import clock
from nodes.local.offline import OFFLINE_ID_BASE

log = logging.getLogger(__name__)

# Headers that belong to one hop (RFC 9110 7.6.1), never passed on.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
# What a proxy or a county that lost its database answers: the county is not there.
AWAY_STATUSES = {502, 503, 504}
# The header by which the county knows a request came through its shop's node (the home
# shop may then spend the reserve it keeps for that node: the node knows and follows).
NODE_TOKEN_HEADER = "X-Shop-Node-Token"
# The counter's sale endpoint, and any path naming a sale: /api/v1/sales/<id>[/...].
_SALE_POST = re.compile(r"^/api/v1/shops/[^/]+/sales$")
_SALE_PATH = re.compile(r"^/api/v1/sales/(\d+)(/.*)?$")
# What the counter asks before and when it sells: the customer's allowance, the sale.
_COUNTER_SALE = re.compile(r"^/api/v1/shops/[^/]+/(sales|customer)$")
# The counter's own calls: a clerk with a queue waits no longer than this for the county
# before the node answers by itself (the counter page gives up at 8 s and retries).
_COUNTER_CALL = re.compile(
    r"^/api/v1/(shops/[^/]+/(sales|customer|goods/[^/]+)|cards/resolve|auth/token)$"
)
# Requests bigger than this are not a counter's: the county's own limit decides them.
MAX_BODY = 32 * 1024 * 1024


class Syncing(Protocol):
    """What the gateway needs of the syncer (nodes.local.sync.Syncer)."""

    @property
    def online(self) -> bool: ...

    def mark_offline(self, now: datetime) -> None: ...

    def wake(self) -> None: ...


class Learning(Protocol):
    """What the gateway tells the node about answers it passed through (nodes.local.app)."""

    def pending_sales(self) -> int: ...

    def sign_in_accepted(self, username: str, password: str, now: datetime) -> list[str]: ...

    def token_accepted(
        self, username: str, password: str, token: str, expires_at: str | None, now: datetime
    ) -> None: ...

    def online_sale(self, answer: dict[str, Any], now: datetime) -> None: ...

    def signed_out(self) -> list[str]: ...


class Gateway:
    """WSGI app: the county while it answers, the local app while it does not."""

    def __init__(
        self,
        local_app: Callable[..., Iterable[bytes]],
        *,
        upstream: str,
        node_token: str,
        syncer: Syncing,
        node: Learning,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        slow_read_timeout: float = 60.0,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self.local_app = local_app
        self.upstream = upstream.rstrip("/")
        self.node_token = node_token
        self.syncer = syncer
        self.node = node
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        # Pages and reports may take the county longer; they have no queue behind them.
        self.slow_timeout = urllib3.Timeout(connect=connect_timeout, read=slow_read_timeout)
        # Never retried here: a retried POST could sell twice; the counter retries with its
        # own idempotency key, and the county answers a repeat with the first sale.
        self.pool = pool or urllib3.PoolManager(maxsize=16, retries=False)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if self._always_local(path, method):
            return self.local_app(environ, start_response)
        if not self.syncer.online or self._held_local(path, method):
            return self.local_app(environ, start_response)
        try:
            body = _read_body(environ)
        except ValueError:
            return _plain(start_response, 413, b"request too large")
        answer = self._forward(environ, method, path, body)
        if answer is None:
            self.syncer.mark_offline(clock.now())
            self.syncer.wake()
            environ["wsgi.input"] = _Replay(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            return self.local_app(environ, start_response)
        status, headers, content = answer
        headers = headers + self._learn(environ, method, path, body, status, headers, content)
        start_response(f"{status} {_reason(status)}", headers)
        return [content]

    # --- routing ------------------------------------------------------------------------

    def _always_local(self, path: str, method: str) -> bool:
        if path == "/node" or path.startswith("/node/"):
            return True
        found = _SALE_PATH.match(path)
        if found and int(found.group(1)) >= OFFLINE_ID_BASE:
            return True
        # The local logout view refuses while sales wait (and signs out otherwise).
        return path == "/logout" and method == "POST" and self.node.pending_sales() > 0

    def _held_local(self, path: str, method: str) -> bool:
        """While offline sales wait, the counter keeps selling from the node.

        The county does not know those sales yet: an online sale of the same household
        now could spend what they already spent, and their intake would find the
        allowance gone. The drain takes seconds once the line is back; until the outbox
        is empty the counter sells within the allowance, which is always safe.
        """
        if method != "POST" or not _COUNTER_SALE.match(path):
            return False
        return self.node.pending_sales() > 0

    def _forward(
        self, environ: dict[str, Any], method: str, path: str, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """The county's answer, or None when it is away."""
        query = environ.get("QUERY_STRING", "")
        url = self.upstream + _quote_path(path) + (f"?{query}" if query else "")
        try:
            response = self.pool.request(
                method,
                url,
                body=body if body or method not in ("GET", "HEAD") else None,
                headers=self._request_headers(environ),
                redirect=False,
                preload_content=True,
                decode_content=False,
                timeout=self.timeout if _COUNTER_CALL.match(path) else self.slow_timeout,
            )
        except (Urllib3Error, OSError) as exc:
            log.warning("county away (%s %s): %s", method, path, exc)
            return None
        if response.status in AWAY_STATUSES:
            log.warning("county away (%s %s): HTTP %s", method, path, response.status)
            return None
        headers = [
            (name, value)
            for name, value in response.headers.items()
            if name.lower() not in HOP_BY_HOP
        ]
        content = response.data or b""
        if method != "HEAD":
            headers.append(("Content-Length", str(len(content))))
        return response.status, headers, content

    def _request_headers(self, environ: dict[str, Any]) -> dict[str, str]:
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").title()
                if name.lower() not in HOP_BY_HOP:
                    headers[name] = value
        for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers[name] = environ[key]
        headers.pop("Content-Length", None)
        remote = environ.get("REMOTE_ADDR")
        if remote:
            prior = headers.get("X-Forwarded-For")
            headers["X-Forwarded-For"] = f"{prior}, {remote}" if prior else remote
        headers[NODE_TOKEN_HEADER] = self.node_token
        return headers

    # --- learning from answers ----------------------------------------------------------

    def _learn(
        self,
        environ: dict[str, Any],
        method: str,
        path: str,
        body: bytes,
        status: int,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> list[tuple[str, str]]:
        """What the node keeps of an answer it passed on; extra headers for the browser.

        Never lets a failure here spoil the county's answer: the browser gets it whatever
        the node could or could not remember.
        """
        if method != "POST":
            return []
        now = clock.now()
        try:
            if path == "/login" and status in (302, 303) and _sets_cookie(headers, "session"):
                form = parse_qs(body.decode("utf-8", "replace"))
                username = (form.get("username") or [""])[0].strip()
                password = (form.get("password") or [""])[0]
                if username and password:
                    cookies = self.node.sign_in_accepted(username, password, now)
                    return [("Set-Cookie", cookie) for cookie in cookies]
            elif path == "/logout":
                return [("Set-Cookie", cookie) for cookie in self.node.signed_out()]
            elif path == "/api/v1/auth/token" and status in (200, 201):
                asked = json.loads(body or b"{}")
                given = json.loads(content or b"{}")
                if isinstance(asked, dict) and isinstance(given, dict) and given.get("token"):
                    self.node.token_accepted(
                        str(asked.get("username", "")).strip(),
                        str(asked.get("password", "")),
                        str(given["token"]),
                        given.get("expires_at"),
                        now,
                    )
            elif _SALE_POST.match(path) and status == 201:
                answer = json.loads(content or b"{}")
                if isinstance(answer, dict):
                    self.node.online_sale(answer, now)
        except Exception:  # the county's answer stands; the next sync repairs what we missed
            log.exception("could not learn from %s %s", method, path)
        return []


class _Replay:
    """A request body read once for the county, readable again by the local app."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._body) if size is None or size < 0 else self._at + size
        chunk = self._body[self._at : end]
        self._at += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        end = self._body.find(b"\n", self._at)
        end = len(self._body) if end < 0 else end + 1
        if size is not None and size >= 0:
            end = min(end, self._at + size)
        chunk = self._body[self._at : end]
        self._at += len(chunk)
        return chunk

    def __iter__(self) -> Any:
        while line := self.readline():
            yield line


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        raise ValueError("too large")
    if length <= 0:
        return b""
    return environ["wsgi.input"].read(length)


def _quote_path(path: str) -> str:
    # WSGI gives the path decoded as latin-1; the county must get the bytes it was sent.
    return quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~")


def _sets_cookie(headers: list[tuple[str, str]], name: str) -> bool:
    prefix = f"{name}="
    return any(k.lower() == "set-cookie" and v.startswith(prefix) for k, v in headers)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _plain(start_response: Callable[..., Any], status: int, text: bytes) -> list[bytes]:
    start_response(
        f"{status} {_reason(status)}",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(text)))],
    )
    return [text]

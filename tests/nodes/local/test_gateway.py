"""The node's gateway: the county's answers while it is there, the local app's when it is not."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from nodes.local.gateway import NODE_TOKEN_HEADER, Gateway
from nodes.local.offline import OFFLINE_ID_BASE


class FakeSyncer:
    def __init__(self) -> None:
        self.online = True
        self.marked: list[datetime] = []
        self.woken = 0

    def mark_offline(self, now: datetime) -> None:
        self.online = False
        self.marked.append(now)

    def wake(self) -> None:
        self.woken += 1


class FakeNode:
    def __init__(self) -> None:
        self.pending = 0
        self.sign_ins: list[tuple[str, str]] = []
        self.tokens: list[tuple[str, str, str]] = []
        self.sales: list[dict[str, Any]] = []

    def pending_sales(self) -> int:
        return self.pending

    def sign_in_accepted(self, username: str, password: str, now: datetime) -> list[str]:
        self.sign_ins.append((username, password))
        return ["node_session=local; HttpOnly; Path=/"]

    def token_accepted(
        self, username: str, password: str, token: str, expires_at: str | None, now: datetime
    ) -> None:
        self.tokens.append((username, password, token))

    def online_sale(self, answer: dict[str, Any], now: datetime) -> None:
        self.sales.append(answer)

    def signed_out(self) -> list[str]:
        return ["node_session=; Max-Age=0; Path=/"]


@Request.application
def local_app(request: Request) -> Response:
    return Response(
        json.dumps({"local": True, "path": request.path, "body": request.get_data(as_text=True)}),
        mimetype="application/json",
    )


class County:
    """A stand-in county on a loopback port: it records what it was sent."""

    def __init__(self) -> None:
        self.seen: list[Request] = []
        self.bodies: list[bytes] = []
        self.status = 200
        self.hang = threading.Event()

        @Request.application
        def app(request: Request) -> Response:
            self.seen.append(request)
            self.bodies.append(request.get_data())
            if request.path.endswith("/slow"):
                self.hang.wait(5)
            if request.path == "/login" and request.method == "POST" and self.status == 200:
                response = Response("", status=302, headers={"Location": "/counter"})
                response.set_cookie("session", "county-cookie")
                response.set_cookie("other", "x")
                return response
            if request.path == "/api/v1/auth/token":
                return Response(
                    json.dumps({"token": "tok-1", "expires_at": "2026-12-05T10:00:00+08:00"}),
                    status=201,
                    mimetype="application/json",
                )
            if request.path.endswith("/sales") and request.method == "POST":
                return Response(
                    json.dumps({"sale_id": 7, "household_id": 3, "balance_after": 90}),
                    status=201,
                    mimetype="application/json",
                )
            return Response(
                json.dumps({"county": True, "path": request.path}),
                status=self.status,
                mimetype="application/json",
            )

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.hang.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def county() -> Iterator[County]:
    server = County()
    yield server
    server.close()


def _gateway(upstream: str, **options: Any) -> tuple[Client, FakeSyncer, FakeNode]:
    syncer, node = FakeSyncer(), FakeNode()
    gateway = Gateway(
        local_app, upstream=upstream, node_token="node-token", syncer=syncer, node=node, **options
    )
    return Client(gateway), syncer, node


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_online_answers_are_the_countys_with_the_node_token_added(county: County) -> None:
    client, syncer, _node = _gateway(f"http://127.0.0.1:{county.port}")
    response = client.get("/api/v1/shops?x=1", headers={"Authorization": "Bearer clerk"})
    assert response.status_code == 200
    assert response.get_json() == {"county": True, "path": "/api/v1/shops"}
    sent = county.seen[-1]
    assert sent.args["x"] == "1"
    assert sent.headers["Authorization"] == "Bearer clerk"
    assert sent.headers[NODE_TOKEN_HEADER] == "node-token"
    assert syncer.online and not syncer.marked


def test_county_refusals_pass_through_unchanged(county: County) -> None:
    county.status = 409
    client, syncer, _node = _gateway(f"http://127.0.0.1:{county.port}")
    response = client.post("/api/v1/shops/GJY/customer", json={"card_payload": "x"})
    assert response.status_code == 409
    assert response.get_json()["county"] is True
    assert syncer.online


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_proxy_that_cannot_reach_the_county_means_offline(county: County, status: int) -> None:
    county.status = status
    client, syncer, _node = _gateway(f"http://127.0.0.1:{county.port}")
    response = client.get("/counter")
    assert response.get_json() == {"local": True, "path": "/counter", "body": ""}
    assert not syncer.online and len(syncer.marked) == 1 and syncer.woken == 1


def test_connection_refused_hands_the_same_request_to_the_local_app() -> None:
    client, syncer, _node = _gateway(f"http://127.0.0.1:{_closed_port()}")
    body = json.dumps({"lines": [{"sku": "DM10", "qty": 1}], "idempotency_key": "k-1"})
    response = client.post("/api/v1/shops/GJY/sales", data=body, content_type="application/json")
    # The local app read the whole body the gateway had already read for the county.
    assert response.get_json() == {
        "local": True,
        "path": "/api/v1/shops/GJY/sales",
        "body": body,
    }
    assert not syncer.online


def test_a_county_that_accepts_but_never_answers_times_out_to_offline(county: County) -> None:
    client, syncer, _node = _gateway(f"http://127.0.0.1:{county.port}", read_timeout=0.3)
    response = client.get("/api/v1/shops/GJY/goods/slow")
    assert response.get_json()["local"] is True
    assert not syncer.online


def test_offline_requests_never_wait_for_the_county() -> None:
    client, syncer, _node = _gateway("http://127.0.0.1:9")
    syncer.online = False
    assert client.get("/counter").get_json()["local"] is True
    assert not syncer.marked


@pytest.mark.parametrize(
    "path",
    [
        "/node/status",
        f"/api/v1/sales/{OFFLINE_ID_BASE + 7}",
        f"/api/v1/sales/{OFFLINE_ID_BASE + 7}/receipt",
        f"/api/v1/sales/{OFFLINE_ID_BASE + 7}/print",
    ],
)
def test_the_nodes_own_paths_are_always_local(county: County, path: str) -> None:
    client, _syncer, _node = _gateway(f"http://127.0.0.1:{county.port}")
    assert client.get(path).get_json()["local"] is True
    assert county.seen == []


def test_a_county_sale_id_goes_to_the_county(county: County) -> None:
    client, _syncer, _node = _gateway(f"http://127.0.0.1:{county.port}")
    assert client.get("/api/v1/sales/1999999999").get_json()["county"] is True


def test_sign_out_stays_local_while_sales_wait(county: County) -> None:
    client, _syncer, node = _gateway(f"http://127.0.0.1:{county.port}")
    node.pending = 2
    assert client.post("/logout").get_json()["local"] is True
    node.pending = 0
    response = client.post("/logout")
    assert response.get_json()["county"] is True
    # Signed out of the county, signed out of the node too.
    assert "node_session=; Max-Age=0; Path=/" in response.headers.getlist("Set-Cookie")


def test_a_sign_in_the_county_accepted_is_remembered_and_signs_in_at_the_node(
    county: County,
) -> None:
    client, _syncer, node = _gateway(f"http://127.0.0.1:{county.port}")
    response = client.post(
        "/login", data={"username": "clerk-gjy", "password": "s3cret-pass", "csrf_token": "t"}
    )
    assert response.status_code == 302
    cookies = response.headers.getlist("Set-Cookie")
    # Both of the county's cookies arrive unchanged, and the node's own beside them.
    assert any(c.startswith("session=county-cookie") for c in cookies)
    assert any(c.startswith("other=x") for c in cookies)
    assert "node_session=local; HttpOnly; Path=/" in cookies
    assert node.sign_ins == [("clerk-gjy", "s3cret-pass")]


def test_a_refused_sign_in_teaches_the_node_nothing(county: County) -> None:
    county.status = 401
    client, _syncer, node = _gateway(f"http://127.0.0.1:{county.port}")
    response = client.post("/login", data={"username": "clerk-gjy", "password": "wrong-pass"})
    assert response.status_code == 401
    assert node.sign_ins == []
    assert "node_session" not in " ".join(response.headers.getlist("Set-Cookie"))


def test_tokens_and_online_sales_are_learned(county: County) -> None:
    client, _syncer, node = _gateway(f"http://127.0.0.1:{county.port}")
    client.post("/api/v1/auth/token", json={"username": "clerk-gjy", "password": "pw-123456"})
    assert node.tokens == [("clerk-gjy", "pw-123456", "tok-1")]
    client.post(
        "/api/v1/shops/GJY/sales",
        json={"card_payload": "IC1...", "lines": [], "idempotency_key": "k"},
    )
    assert node.sales == [{"sale_id": 7, "household_id": 3, "balance_after": 90}]


def test_garbage_bodies_never_break_the_countys_answer(county: County) -> None:
    client, _syncer, node = _gateway(f"http://127.0.0.1:{county.port}")
    response = client.post(
        "/api/v1/auth/token", data=b"\xff\xfe not json", content_type="application/json"
    )
    assert response.status_code == 201
    assert node.tokens == []


def test_while_offline_sales_wait_the_counter_sells_from_the_node(county: County) -> None:
    client, syncer, node = _gateway(f"http://127.0.0.1:{county.port}")
    node.pending = 1
    sale = {"card_payload": "IC1.x", "lines": [], "idempotency_key": "k"}
    assert client.post("/api/v1/shops/GJY/sales", json=sale).get_json()["local"] is True
    assert client.post("/api/v1/shops/GJY/customer", json={}).get_json()["local"] is True
    # Everything else goes to the county; and once the outbox is empty, sales do too.
    assert client.get("/api/v1/shops/GJY/goods/SOAP").get_json()["county"] is True
    node.pending = 0
    assert client.post("/api/v1/shops/GJY/sales", json=sale).status_code == 201
    assert syncer.online

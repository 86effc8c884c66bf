"""The node's local app while the line is down: who may sign in, what sells, what waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from nodes.local import clock
from nodes.local.app import create_local_app
from nodes.local.store import Store
from tests.helpers.pages import csrf_token
from tests.nodes.local.conftest import payload

PASSWORD = "clerk-pass-2026"


def today() -> str:
    """The shop's date as the node numbers its receipts (the tests run on any day)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")


class Away:
    """A syncer whose county never answers."""

    online = False

    def mark_offline(self, now: Any) -> None:
        pass

    def wake(self) -> None:
        pass


@pytest.fixture
def local(store: Store, tmp_path: Path) -> Iterator[Flask]:
    app = create_local_app(
        database_url=store.url,
        home=tmp_path / "home",
        shop_code="GJY",
        syncer=Away(),
        extra={"TESTING": True},
    )
    yield app


def _signed_in_cookie(app: Flask, client: FlaskClient) -> None:
    """As the gateway does when the county let clerk-gjy in: the node's own cookie."""
    runtime = app.extensions["shop_node"]
    for header in runtime.sign_in_accepted("clerk-gjy", PASSWORD, clock.now()):
        name, _, rest = header.partition("=")
        client.set_cookie(name, rest.split(";", 1)[0])


def _sale(client: FlaskClient, key: str, **headers: str) -> Any:
    return client.post(
        "/api/v1/shops/GJY/sales",
        json={
            "card_payload": payload(7),
            "lines": [{"sku": "SOAP", "qty": 2}],
            "idempotency_key": key,
        },
        headers=headers,
    )


def test_a_sign_in_the_county_accepted_opens_the_counter_offline(local: Flask) -> None:
    client = local.test_client()
    _signed_in_cookie(local, client)
    page = client.get("/counter")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "data-node-banner" in html and "data-counter" in html


def test_the_same_person_signs_in_again_at_the_node_with_the_password_the_county_took(
    local: Flask,
) -> None:
    local.extensions["shop_node"].sign_in_accepted("clerk-gjy", PASSWORD, clock.now())
    client = local.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"csrf_token": token, "username": "clerk-gjy", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/counter").status_code == 200


def test_nobody_the_county_never_let_in_here_signs_in_offline(local: Flask) -> None:
    client = local.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"csrf_token": token, "username": "clerk-gjy", "password": PASSWORD}
    )
    assert response.status_code == 401
    assert "连接已断开" in response.get_data(as_text=True)


def test_a_wrong_password_is_wrong_offline_too(local: Flask) -> None:
    local.extensions["shop_node"].sign_in_accepted("clerk-gjy", PASSWORD, clock.now())
    client = local.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"csrf_token": token, "username": "clerk-gjy", "password": "nope-nope"}
    )
    assert response.status_code == 401


def test_the_counter_sells_offline_with_its_header_and_not_without(local: Flask) -> None:
    client = local.test_client()
    _signed_in_cookie(local, client)
    refused = _sale(client, "k-no-header")
    assert refused.status_code == 403
    sold = _sale(client, "k-1", **{"X-CSRFToken": "rendered-by-the-county"})
    assert sold.status_code == 201
    body = sold.get_json()
    assert body["offline"] is True
    assert body["receipt_no"] == f"GJY-{today()}-L0001"
    again = _sale(client, "k-1", **{"X-CSRFToken": "x"})
    assert again.get_json() == body
    sale = client.get(f"/api/v1/sales/{body['sale_id']}")
    assert sale.status_code == 200
    receipt = client.get(f"/api/v1/sales/{body['sale_id']}/receipt?format=text")
    assert f"GJY-{today()}-L0001" in receipt.get_data(as_text=True)


def test_a_token_the_county_issued_works_offline_until_it_expires(local: Flask) -> None:
    runtime = local.extensions["shop_node"]
    now = clock.now()
    runtime.token_accepted("clerk-gjy", PASSWORD, "ipos_tok", "2099-12-04T20:00:00+08:00", now)
    client = local.test_client()
    assert _sale(client, "k-t", Authorization="Bearer ipos_tok").status_code == 201
    assert _sale(client, "k-u", Authorization="Bearer ipos_other").status_code == 401
    runtime.token_accepted("clerk-gjy", PASSWORD, "ipos_old", "2000-01-01T09:00:00+08:00", now)
    assert _sale(client, "k-o", Authorization="Bearer ipos_old").status_code == 401


def test_another_shops_counter_is_not_this_nodes(local: Flask) -> None:
    client = local.test_client()
    _signed_in_cookie(local, client)
    response = client.post(
        "/api/v1/shops/BSP/sales",
        json={"household_id": 7, "lines": [{"sku": "SOAP", "qty": 1}], "idempotency_key": "k"},
        headers={"X-CSRFToken": "x"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "words"),
    [
        ("GET", "/api/v1/shops/GJY/stock", "联网"),
        ("POST", "/api/v1/sales/5/returns", "退货"),
        ("POST", "/api/v1/sales/5/void", "退货"),
        ("POST", "/api/v1/households/7/cards", "联网"),
    ],
)
def test_what_needs_the_countys_books_says_it_waits(
    local: Flask, method: str, path: str, words: str
) -> None:
    client = local.test_client()
    _signed_in_cookie(local, client)
    response = client.open(path, method=method, json={}, headers={"X-CSRFToken": "x"})
    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == "unavailable"
    assert words in body["detail"]


def test_pages_that_need_the_county_say_so_in_plain_words(local: Flask) -> None:
    client = local.test_client()
    _signed_in_cookie(local, client)
    response = client.get("/shops/GJY/sales")
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "断" in html and "<h1>" in html


def test_sign_out_waits_for_the_sales(local: Flask) -> None:
    client = local.test_client()
    _signed_in_cookie(local, client)
    assert _sale(client, "k-wait", **{"X-CSRFToken": "x"}).status_code == 201
    token = csrf_token(client, "/counter")
    refused = client.post("/logout", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "1" in refused.get_data(as_text=True)
    assert client.get("/counter").status_code == 200


def test_node_status_tells_the_counter_what_waits(local: Flask) -> None:
    client = local.test_client()
    _signed_in_cookie(local, client)
    _sale(client, "k-s", **{"X-CSRFToken": "x"})
    status = local.test_client().get("/node/status").get_json()
    assert status["online"] is False
    assert status["pending_sales"] == 1
    assert status["allowance_households"] == 2
    assert set(status) >= {"online", "last_sync_at", "offline_since", "pending_sales"}

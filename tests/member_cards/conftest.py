"""Fixtures for member card tests: a small county, who works where, and request helpers."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import pytest

from accounts.auth import Role, User
from ledger.models import Household, Village
from tests.factories import PASSWORD, Factory

_INPUT = re.compile(r"<input\b[^>]*>", re.S)
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')


@dataclass
class County:
    zjb: Village
    gjy: Village
    home: Household
    away: Household
    admin: User
    cadre: User
    other_cadre: User
    manager: User
    clerk: User


@pytest.fixture
def county(factory: Factory) -> County:
    """Two villages with a household each, and a user of every role."""
    zjb = factory.village("ZJB", name="郑家榜村")
    gjy = factory.village("GJY", name="高家堰村", floor=100)
    home = factory.household(zjb, head="覃德华", members=("覃德华", "向秀英"), balance=120)
    away = factory.household(gjy, head="田建国", members=("田建国",), balance=300)
    shop = factory.shop("GJY")
    return County(
        zjb=zjb,
        gjy=gjy,
        home=home,
        away=away,
        admin=factory.admin,
        cadre=factory.user(Role.CADRE, village="ZJB", username="cadre-zjb"),
        other_cadre=factory.user(Role.CADRE, village="GJY", username="cadre-gjy"),
        manager=factory.user(Role.MANAGER, shop=shop.code, username="manager-gjy"),
        clerk=factory.user(Role.CLERK, shop=shop.code, username="clerk-gjy"),
    )


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 answer with API.md's fields and the given machine code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["title"] and body["detail"]
    return body


def hidden_fields(page: str) -> dict[str, str]:
    fields = {}
    for tag in _INPUT.findall(page):
        attrs = dict(_ATTR.findall(tag))
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields.setdefault(attrs["name"], html.unescape(attrs.get("value", "")))
    return fields


def login(client: Any, username: str) -> None:
    token = hidden_fields(client.get("/login").get_data(as_text=True))["csrf_token"]
    response = client.post(
        "/login", data={"csrf_token": token, "username": username, "password": PASSWORD}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def csrf_token(client: Any, url: str = "/balance") -> str:
    return hidden_fields(client.get(url).get_data(as_text=True))["csrf_token"]

"""Fixtures for member card tests: a small county, who works where, and request helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from accounts.auth import Role, User
from ledger.models import Household, Village
from tests.factories import Factory
from tests.helpers import pages
from tests.helpers.pages import sign_in as login  # noqa: F401  (its tests import it here)


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


def csrf_token(client: Any, url: str = "/balance") -> str:
    return pages.csrf_token(client, url)

"""API authentication (tokens, sessions, CSRF) and the scope table of every ledger endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from accounts.auth import Role, issue_token
from core.db import utcnow
from ledger import services as ledger
from ledger.models import Household, PointRule, Transfer, Village
from tests.conftest import assert_problem, count_rows
from tests.factories import PASSWORD
from tests.helpers.pages import sign_in

# --- the token endpoint ----------------------------------------------------------------


def test_token_endpoint_issues_a_working_token(client, factory):
    factory.user(Role.CADRE, village=factory.village("GJY").code, username="cadre-gjy")
    r = client.post("/api/v1/auth/token", json={"username": "cadre-gjy", "password": PASSWORD})
    assert r.status_code == 201
    assert r.json["token"].startswith("ipos_") and r.json["role"] == "cadre"
    expires = datetime.fromisoformat(r.json["expires_at"])
    assert expires.utcoffset() == timedelta(hours=8)
    assert timedelta(hours=23) < expires - utcnow() <= timedelta(hours=24)
    r = client.get("/api/v1/villages", headers={"Authorization": f"Bearer {r.json['token']}"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "username, password",
    [("cadre-gjy", "wrong password"), ("nobody", PASSWORD), ("inactive", PASSWORD)],
)
def test_token_endpoint_refuses_wrong_credentials(client, factory, username, password):
    factory.user(Role.ADMIN, username="cadre-gjy")
    factory.user(Role.ADMIN, username="inactive").active = False
    factory.session.commit()
    r = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    body = assert_problem(r, 401, "unauthenticated")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert "token" not in body


def test_token_endpoint_validates_its_body(client):
    assert_problem(client.post("/api/v1/auth/token", json={"username": "x"}), 422)
    assert_problem(client.post("/api/v1/auth/token", json={"username": "", "password": "p"}), 422)


def test_bad_authorization_header_is_401(client):
    for header in (
        "Bearer ipos_not-a-real-token",
        "Bearer ",
        "Bearer",
        "Basic YWRtaW46cGFzcw==",
        "ipos_x",
        "Bearer ipos_\u6751",
    ):
        r = client.get("/api/v1/villages", headers={"Authorization": header})
        assert_problem(r, 401, "unauthenticated")


def test_expired_token_is_401(client, factory):
    user = factory.admin
    token, _row = issue_token(
        factory.session, user, now=utcnow() - timedelta(hours=2), ttl=timedelta(hours=1)
    )
    factory.session.commit()
    r = client.get("/api/v1/villages", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401, "unauthenticated")


def test_deactivated_users_token_is_401(client, factory):
    user = factory.user(Role.ADMIN)
    headers = factory.headers(user)
    assert client.get("/api/v1/villages", headers=headers).status_code == 200
    user.active = False
    factory.session.commit()
    assert_problem(client.get("/api/v1/villages", headers=headers), 401, "unauthenticated")


# --- a browser session calling the API ------------------------------------------------------


def test_session_cookie_api_post_needs_csrf_header(client, factory):
    factory.user(Role.ADMIN, username="office")
    csrf_token = sign_in(client, "office")
    assert client.get("/api/v1/villages").status_code == 200
    body = {"code": "GJY", "name": "高家堰村"}
    assert_problem(client.post("/api/v1/villages", json=body), 403, "forbidden")
    assert_problem(
        client.post("/api/v1/villages", json=body, headers={"X-CSRFToken": "forged"}),
        403,
        "forbidden",
    )
    assert count_rows(Village) == 0
    r = client.post("/api/v1/villages", json=body, headers={"X-CSRFToken": csrf_token})
    assert r.status_code == 201


def test_bad_bearer_token_is_not_rescued_by_session_cookie(client, factory):
    factory.user(Role.ADMIN, username="office")
    csrf_token = sign_in(client, "office")
    headers = {"Authorization": "Bearer ipos_wrong", "X-CSRFToken": csrf_token}
    assert_problem(client.get("/api/v1/villages", headers=headers), 401, "unauthenticated")
    assert_problem(
        client.post("/api/v1/villages", json={"code": "A", "name": "a"}, headers=headers),
        401,
        "unauthenticated",
    )
    assert count_rows(Village) == 0


def test_anonymous_api_is_401_not_a_login_redirect(client):
    r = client.get("/api/v1/households")
    assert_problem(r, 401, "unauthenticated")
    assert "Location" not in r.headers


# --- the scope table ----------------------------------------------------------------------

ROLES = ("admin", "cadre_own", "cadre_other", "manager", "clerk", "anonymous")


@dataclass
class World:
    """Village A (the target) and B; one household and one award in A; a user per role."""

    household_id: int
    headers: dict[str, dict[str, str]]
    awards: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def world(factory) -> World:
    a, b = factory.village("A"), factory.village("B")
    household = factory.household(a, balance=50)
    factory.rule("VOLUNTEER", 2, "person")
    users = {
        "admin": factory.admin,
        "cadre_own": factory.user(Role.CADRE, village=a.code),
        "cadre_other": factory.user(Role.CADRE, village=b.code),
        "manager": factory.user(Role.MANAGER, shop="S1"),
        "clerk": factory.user(Role.CLERK, shop="S1"),
    }
    headers = {role: factory.headers(user) for role, user in users.items()}
    headers["anonymous"] = {}
    awards = {}
    for role in ROLES:
        awards[role] = ledger.post_award(
            factory.session,
            actor=factory.admin,
            now=utcnow(),
            household_id=household.id,
            idempotency_key=f"seed-{role}",
            points=1,
            reason="x",
        ).transfer.id
    factory.session.commit()
    return World(household.id, headers, awards)


@dataclass(frozen=True)
class Case:
    method: str
    path: Callable[[World], str]
    body: Callable[[World, str], Any] | None
    allowed: dict[str, int]
    # What a permitted call must leave behind, to prove a refusal left nothing.
    model: Any = None


def _csv(w: World, role: str) -> bytes:
    return (
        "household_id,rule_code,persons,reason,idempotency_key\n"
        f"{w.household_id},VOLUNTEER,1,,imp-{role}\n"
    ).encode()


CASES = {
    "create_village": Case(
        "POST",
        lambda w: "/api/v1/villages",
        lambda w, r: {"code": f"N-{r}", "name": "新村"},
        {"admin": 201},
        Village,
    ),
    "list_villages": Case(
        "GET",
        lambda w: "/api/v1/villages",
        None,
        dict.fromkeys(ROLES[:-1], 200),
    ),
    "update_village": Case(
        "PATCH",
        lambda w: "/api/v1/villages/A",
        lambda w, r: {"name": f"改名-{r}"},
        {"admin": 200, "cadre_own": 200},
    ),
    "create_household": Case(
        "POST",
        lambda w: "/api/v1/households",
        lambda w, r: {"village_code": "A", "head_name": f"户主-{r}"},
        {"admin": 201, "cadre_own": 201},
        Household,
    ),
    "search_households": Case(
        "GET",
        lambda w: "/api/v1/households",
        None,
        {"admin": 200, "cadre_own": 200, "cadre_other": 200},
    ),
    "get_household": Case(
        "GET",
        lambda w: f"/api/v1/households/{w.household_id}",
        None,
        {"admin": 200, "cadre_own": 200, "manager": 200, "clerk": 200},
    ),
    "statement": Case(
        "GET",
        lambda w: f"/api/v1/households/{w.household_id}/statement",
        None,
        {"admin": 200, "cadre_own": 200, "manager": 200, "clerk": 200},
    ),
    "verify": Case("GET", lambda w: "/api/v1/ledger/verify", None, {"admin": 200}),
    "county_rule": Case(
        "POST",
        lambda w: "/api/v1/rules",
        lambda w, r: {"code": f"R-{r}", "title": "t", "points": 1},
        {"admin": 201},
        PointRule,
    ),
    "village_rule": Case(
        "POST",
        lambda w: "/api/v1/rules",
        lambda w, r: {"code": f"R-{r}", "title": "t", "points": 1, "village_code": "A"},
        {"admin": 201, "cadre_own": 201},
        PointRule,
    ),
    "list_rules": Case(
        "GET",
        lambda w: "/api/v1/rules?village_code=A",
        None,
        dict.fromkeys(ROLES[:-1], 200),
    ),
    "award": Case(
        "POST",
        lambda w: "/api/v1/awards",
        lambda w, r: (
            {"household_id": w.household_id, "points": 3, "reason": "x"}
            | {"idempotency_key": f"k-{r}"}
        ),
        {"admin": 201, "cadre_own": 201},
        Transfer,
    ),
    "import": Case(
        "POST",
        lambda w: "/api/v1/awards/import",
        _csv,
        {"admin": 200, "cadre_own": 200, "cadre_other": 200},
    ),
    "correction": Case(
        "POST",
        lambda w: "/api/v1/corrections",
        lambda w, r: {"transfer_id": w.awards[r], "reason": "录错", "idempotency_key": f"c-{r}"},
        {"admin": 201, "cadre_own": 201},
        Transfer,
    ),
}


@pytest.mark.parametrize("endpoint", CASES)
def test_scope_table(client, world, endpoint):
    case = CASES[endpoint]
    # Refusals first: they must leave nothing behind, so count before the permitted calls.
    order = sorted(ROLES, key=lambda role: role in case.allowed)
    for role in order:
        before = count_rows(case.model) if case.model is not None else None
        kwargs: dict[str, Any] = {"headers": world.headers[role]}
        if case.body is not None:
            body = case.body(world, role)
            if isinstance(body, bytes):
                kwargs.update(data=body, content_type="text/csv")
            else:
                kwargs["json"] = body
        r = client.open(case.path(world), method=case.method, **kwargs)
        if role == "anonymous":
            assert_problem(r, 401, "unauthenticated")
        elif role in case.allowed:
            assert r.status_code == case.allowed[role], (role, r.get_data(as_text=True))
            assert r.mimetype == "application/json"
        else:
            assert_problem(r, 403, "forbidden")
        if before is not None and role not in case.allowed:
            assert count_rows(case.model) == before, role


def test_import_rows_outside_the_cadres_village_are_refused_by_line(client, world):
    r = client.post(
        "/api/v1/awards/import",
        data=_csv(world, "x"),
        content_type="text/csv",
        headers=world.headers["cadre_other"],
    )
    assert r.status_code == 200
    assert r.json["created"] == 0
    assert [(e["line"], e["code"]) for e in r.json["errors"]] == [(2, "forbidden")]


def test_cadre_search_sees_only_own_village(client, factory, world):
    factory.household(factory.session.query(Village).filter_by(code="B").one(), head="乙村户")
    r = client.get("/api/v1/households", headers=world.headers["cadre_other"])
    assert [h["head_name"] for h in r.json["households"]] == ["乙村户"]
    r = client.get("/api/v1/households?village_code=A", headers=world.headers["cadre_other"])
    assert r.json["total"] == 0
    r = client.get("/api/v1/households", headers=world.headers["admin"])
    assert r.json["total"] == 2

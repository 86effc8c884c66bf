"""Malformed input never answers 500: every refusal is a 4xx problem+json and changes nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from accounts.auth import ApiToken
from core.db import db
from ledger.models import Account, Household, HouseholdMember, PointRule, Transfer, Village
from tests.conftest import assert_problem
from tests.factories import PASSWORD

TABLES = (Village, Household, HouseholdMember, PointRule, Transfer, ApiToken)
LONE_SURROGATE = object()  # stands for "\ud800", which has to be written into raw JSON


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: dict[str, Any]
    optional: frozenset[str] = frozenset()
    nullable: frozenset[str] = frozenset()
    # Codes only: a regex refuses text that a free-text field would accept.
    codes: frozenset[str] = frozenset()
    authenticated: bool = True
    # The answer to the well-formed body.
    ok: int = 201


@dataclass
class World:
    household_id: int
    transfer_id: int
    username: str
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def world(factory) -> World:
    village = factory.village("A")
    household = factory.household(village, balance=10)
    factory.rule("VOLUNTEER", 2, "person")
    admin = factory.admin
    transfer_id = db.session.scalar(select(Transfer.id))
    return World(household.id, transfer_id, admin.username, factory.headers(admin))


def endpoints(w: World) -> dict[str, Endpoint]:
    return {
        "create_village": Endpoint(
            "POST",
            "/api/v1/villages",
            {"code": "NEW", "name": "新村", "redemption_floor": 0},
            optional=frozenset({"redemption_floor"}),
            codes=frozenset({"code"}),
        ),
        "update_village": Endpoint(
            "PATCH",
            "/api/v1/villages/A",
            {"name": "改名", "redemption_floor": 5},
            optional=frozenset({"name", "redemption_floor"}),
            ok=200,
        ),
        "create_household": Endpoint(
            "POST",
            "/api/v1/households",
            {"village_code": "A", "head_name": "王", "members": [{"name": "李"}], "address": "1组"},
            optional=frozenset({"members", "address"}),
            nullable=frozenset({"address"}),
            codes=frozenset({"village_code"}),
        ),
        "create_rule": Endpoint(
            "POST",
            "/api/v1/rules",
            {"code": "NEWR", "title": "t", "points": 3, "per": "person", "village_code": "A"},
            optional=frozenset({"per", "village_code"}),
            nullable=frozenset({"village_code"}),
            codes=frozenset({"code", "per", "village_code"}),
        ),
        "award_by_rule": Endpoint(
            "POST",
            "/api/v1/awards",
            {
                "household_id": w.household_id,
                "rule_code": "VOLUNTEER",
                "persons": 1,
                "reason": "扫雪",
                "idempotency_key": "k-rule",
            },
            optional=frozenset({"persons", "reason"}),
            codes=frozenset({"rule_code"}),
        ),
        "award_by_points": Endpoint(
            "POST",
            "/api/v1/awards",
            {"household_id": w.household_id, "points": -5, "reason": "x", "idempotency_key": "k"},
        ),
        "correction": Endpoint(
            "POST",
            "/api/v1/corrections",
            {"transfer_id": w.transfer_id, "reason": "录错", "idempotency_key": "c"},
        ),
        "token": Endpoint(
            "POST",
            "/api/v1/auth/token",
            {"username": w.username, "password": PASSWORD},
            authenticated=False,
        ),
    }


def _field_mutations(ep: Endpoint) -> list[tuple[str, Any]]:
    """(label, body) pairs, each with one field wrong."""
    out: list[tuple[str, Any]] = []
    for name, good in ep.body.items():
        if isinstance(good, bool) or not isinstance(good, int | str | list):
            raise AssertionError(name)
        if isinstance(good, int):
            bad: list[Any] = ["12", "", 12.5, 12.0, True, False, 10**30, -(10**30), [], {}]
        elif isinstance(good, str):
            bad = [12, 12.5, True, [], {}, "x" * 10_000, "a\x00b", LONE_SURROGATE]
            if name in ep.codes:
                bad += ["", "not a code!", "编码"]
        else:
            bad = ["x", {}, [1], [{}], [{"name": 1}], [{"name": "x", "age": 3}], good * 31]
        if name not in ep.nullable:
            bad.append(None)
        out += [(f"{name}={_label(v)}", {**ep.body, name: v}) for v in bad]
        if name not in ep.optional:
            out.append((f"no {name}", {k: v for k, v in ep.body.items() if k != name}))
    out.append(("unknown field", {**ep.body, "admin": True}))
    return out


def _label(value: Any) -> str:
    return "surrogate" if value is LONE_SURROGATE else repr(value)[:20]


def _encode(body: Any) -> bytes:
    text = json.dumps(body, ensure_ascii=True, default=lambda _: "@@SURROGATE@@")
    return text.replace('"@@SURROGATE@@"', '"a\\ud800b"').encode()


def _raw_bodies(ep: Endpoint) -> list[tuple[str, bytes, str]]:
    """(label, bytes, content type) for bodies that are not the JSON object expected."""
    good = json.dumps(ep.body).encode()
    # Not UTF-8 only if something in it is not ASCII.
    chinese = json.dumps({**ep.body, "村": "村"}, ensure_ascii=False)
    return [
        ("invalid json", b'{"code": ', "application/json"),
        ("array", b"[1, 2]", "application/json"),
        ("string", b'"x"', "application/json"),
        ("null", b"null", "application/json"),
        ("number", b"42", "application/json"),
        ("empty", b"", "application/json"),
        ("nested deep", b"[" * 100_000 + b"]" * 100_000, "application/json"),
        ("5000 digits", b'{"x": ' + b"9" * 5000 + b"}", "application/json"),
        ("NaN", good.replace(b"}", b', "nan": NaN}'), "application/json"),
        ("gb18030 json", chinese.encode("gb18030"), "application/json"),
        ("text/plain", good, "text/plain"),
        ("form", b"code=NEW&name=x", "application/x-www-form-urlencoded"),
        ("multipart", b"--b\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
        ("no content type", good, ""),
    ]


def _counts() -> tuple[Any, ...]:
    """Rows per table, every village's name and floor, every cached balance."""
    db.session.rollback()
    rows = tuple(db.session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES)
    villages = tuple(db.session.execute(select(Village.name, Village.redemption_floor)))
    balances = tuple(db.session.scalars(select(Account.balance).order_by(Account.id)))
    return rows, villages, balances


@pytest.mark.parametrize(
    "name",
    [
        "create_village",
        "update_village",
        "create_household",
        "create_rule",
        "award_by_rule",
        "award_by_points",
        "correction",
        "token",
    ],
)
def test_malformed_bodies_are_refused_and_change_nothing(client, world, name):
    ep = endpoints(world)[name]
    headers = world.headers if ep.authenticated else {}
    before = _counts()
    failures = []
    requests = [(label, _encode(body), "application/json") for label, body in _field_mutations(ep)]
    requests += _raw_bodies(ep)
    for label, data, content_type in requests:
        r = client.open(
            ep.path, method=ep.method, data=data, content_type=content_type, headers=headers
        )
        body = r.get_json(silent=True, force=True) or {}
        ok = (
            400 <= r.status_code < 500
            and r.mimetype == "application/problem+json"
            and body.get("code") in {"validation_error", "unauthenticated"}
            and body.get("status") == r.status_code
        )
        if not ok:
            failures.append((label, r.status_code, r.get_data(as_text=True)[:200]))
    assert failures == []
    assert _counts() == before
    # A well-formed request still works afterwards: the refusals left no broken state.
    r = client.open(ep.path, method=ep.method, json=ep.body, headers=headers)
    assert r.status_code == ep.ok, r.get_data(as_text=True)


def test_unknown_api_url_is_404_problem(client, world):
    for path in ("/api/v1/nothing", "/api/v1/households/x", "/api/v2/villages"):
        assert_problem(client.get(path, headers=world.headers), 404, "not_found")


def test_wrong_method_is_405_problem(client, world):
    for method, path in (
        ("DELETE", "/api/v1/awards"),
        ("PUT", "/api/v1/villages"),
        ("GET", "/api/v1/corrections"),
        ("POST", f"/api/v1/households/{world.household_id}"),
    ):
        r = client.open(path, method=method, headers=world.headers)
        assert_problem(r, 405)
        assert "Allow" in r.headers


MALFORMED_QUERIES = [
    ("/api/v1/households/99999999999999999999999999999999", 404),
    ("/api/v1/households/4294967296", 404),
    ("/api/v1/households/99999999999999999999/statement", 404),
    ("/api/v1/households?limit=abc", 422),
    ("/api/v1/households?limit=0", 422),
    ("/api/v1/households?limit=1e400", 422),
    ("/api/v1/households?limit=" + "9" * 5000, 422),
    ("/api/v1/households?offset=-1", 422),
    ("/api/v1/households?q=" + "x" * 101, 422),
    ("/api/v1/households?q=%00", 422),
    ("/api/v1/households?village_code=%00", 422),
    ("/api/v1/households/{hid}/statement?before=0", 422),
    ("/api/v1/households/{hid}/statement?before=99999999999999999999999", 422),
    ("/api/v1/households/{hid}/statement?limit=", 422),
    ("/api/v1/households/{hid}/statement?limit=201", 422),
    ("/api/v1/rules?village_code=not%20a%20code", 422),
    ("/api/v1/rules?village_code=%00", 422),
]


def test_malformed_queries_and_paths_are_4xx(client, world):
    for path, status in MALFORMED_QUERIES:
        r = client.get(path.format(hid=world.household_id), headers=world.headers)
        assert r.status_code == status, (path, r.get_data(as_text=True))
        assert_problem(r, status)


def test_malformed_path_codes_are_4xx(client, world, backend):
    before = _counts()
    # SQLite looks a NUL up and finds nothing; PostgreSQL refuses to look it up at all.
    nul = 422 if backend == "postgresql" else 404
    for code, status in (("%00", nul), ("x" * 300, 404), ("%E6%9D%91", 404), ("%ff", 404)):
        r = client.patch(f"/api/v1/villages/{code}", json={"name": "x"}, headers=world.headers)
        assert r.status_code == status, (code, r.get_data(as_text=True))
        assert_problem(r, status)
    assert _counts() == before


def test_body_over_the_size_limit_is_413_problem(app, client, world):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    r = client.post(
        "/api/v1/awards/import", data=b"x" * 2000, content_type="text/csv", headers=world.headers
    )
    assert_problem(r, 413, "validation_error")

"""The county's JSON API: rankings for scoped tokens, categories and thresholds, clear 4xx."""

from __future__ import annotations

import pytest

from accounts.auth import Role
from tests.conftest import assert_problem
from tests.county.conftest import County
from tests.county.test_dashboard import shops  # noqa: F401  (fixture)


@pytest.fixture
def admin_headers(built: County):
    return built.factory.headers(built.admin)


def test_red_and_black_lists_for_a_cadres_token(client, built: County):
    headers = built.factory.headers(built.factory.user(Role.CADRE, village="VA"))
    red = client.get("/api/v1/county/red-list?period=2026-11&top=3", headers=headers).get_json()
    assert red["village_code"] == "VA" and red["period"]["key"] == "2026-11"
    assert [(r["rank"], r["head_name"], r["score"]) for r in red["rows"]] == [
        (1, "甲户主", 9),
        (1, "乙户主", 9),
        (3, "戊户主", 4),
    ]
    black = client.get("/api/v1/county/black-list?period=2026-11", headers=headers).get_json()
    (entry,) = black["rows"]
    assert entry["penalised"] == 5 and entry["penalties"][0]["reason"] == "焚烧秸秆"
    assert entry["penalties"][0]["at"].endswith("+08:00")
    response = client.get("/api/v1/county/red-list?village_code=VB", headers=headers)
    assert_problem(response, 403, "forbidden")


def test_ten_star_and_stars(client, built: County, admin_headers):
    ten = client.get("/api/v1/county/ten-star?period=2026-11", headers=admin_headers).get_json()
    assert [r["head_name"] for r in ten["rows"]] == ["己户主", "甲户主"]
    assert ten["categories"] == ["ECO", "WELFARE"] and ten["missing_thresholds"] == []
    q = client.get("/api/v1/county/ten-star?period=2026-Q4", headers=admin_headers).get_json()
    assert q["rows"] == [] and q["missing_thresholds"] == ["ECO", "WELFARE"]
    stars = client.get(
        f"/api/v1/county/stars?period=2026-11&household_id={built.h['甲'].id}",
        headers=admin_headers,
    ).get_json()
    assert stars["rows"][0]["points"] == {"ECO": 5, "WELFARE": 4}
    assert stars["rows"][0]["stars"] == ["ECO", "WELFARE"]
    assert_problem(client.get("/api/v1/county/stars", headers=admin_headers), 422)


@pytest.mark.parametrize(
    "query",
    ["period=2026-13", "period=nonsense", "top=0", "top=abc", "top=501", "village_code=%3B"],
)
def test_malformed_queries_answer_4xx(client, built: County, admin_headers, query):
    response = client.get(f"/api/v1/county/red-list?{query}", headers=admin_headers)
    assert_problem(response, 422, "validation_error")


def test_unknown_village_and_no_token(client, built: County, admin_headers):
    assert_problem(
        client.get("/api/v1/county/red-list?village_code=NOPE", headers=admin_headers), 404
    )
    assert_problem(client.get("/api/v1/county/red-list"), 401, "unauthenticated")
    clerk = built.factory.headers(built.factory.user(Role.CLERK, shop="S1"))
    assert_problem(client.get("/api/v1/county/red-list", headers=clerk), 403)


def test_categories_and_thresholds(client, built: County, admin_headers):
    created = client.post(
        "/api/v1/rule-categories",
        json={"code": "SAFETY", "name": "平安建设"},
        headers=admin_headers,
    )
    assert created.status_code == 201 and created.get_json()["position"] == 3
    assert_problem(
        client.post(
            "/api/v1/rule-categories", json={"code": "SAFETY", "name": "x"}, headers=admin_headers
        ),
        409,
        "conflict",
    )
    put = client.put(
        "/api/v1/rule-categories/SAFETY/thresholds/month",
        json={"points": 6},
        headers=admin_headers,
    )
    assert put.get_json()["thresholds"] == {"month": 6, "quarter": None, "year": None}
    cleared = client.put(
        "/api/v1/rule-categories/SAFETY/thresholds/month",
        json={"points": None},
        headers=admin_headers,
    )
    assert cleared.get_json()["thresholds"]["month"] is None
    for body in ({"points": 0}, {"points": "5"}, {"points": 5.5}, {}, {"points": 5, "x": 1}):
        response = client.put(
            "/api/v1/rule-categories/SAFETY/thresholds/month", json=body, headers=admin_headers
        )
        assert_problem(response, 422, "validation_error")
    assert_problem(
        client.put(
            "/api/v1/rule-categories/SAFETY/thresholds/week",
            json={"points": 5},
            headers=admin_headers,
        ),
        422,
    )
    patched = client.patch(
        "/api/v1/rule-categories/SAFETY", json={"active": False}, headers=admin_headers
    )
    assert patched.get_json()["active"] is False
    assert_problem(
        client.patch(
            "/api/v1/rule-categories/SAFETY", json={"active": "no"}, headers=admin_headers
        ),
        422,
    )
    listed = client.get("/api/v1/rule-categories", headers=admin_headers).get_json()
    assert [c["code"] for c in listed["categories"]] == ["ECO", "WELFARE", "SAFETY"]
    cadre = built.factory.headers(built.factory.user(Role.CADRE, village="VA"))
    assert_problem(
        client.post("/api/v1/rule-categories", json={"code": "X", "name": "x"}, headers=cadre),
        403,
    )


def test_rule_category(client, built: County, admin_headers):
    rule_id = client.get("/api/v1/rules", headers=admin_headers).get_json()
    rule_id = next(r["id"] for r in rule_id["rules"] if r["code"] == "MISC")
    response = client.put(
        f"/api/v1/rules/{rule_id}/category",
        json={"category_code": "WELFARE"},
        headers=admin_headers,
    )
    assert response.get_json() == {"id": rule_id, "code": "MISC", "category_code": "WELFARE"}
    assert_problem(
        client.put(
            f"/api/v1/rules/{rule_id}/category",
            json={"category_code": "NOPE"},
            headers=admin_headers,
        ),
        404,
    )
    assert_problem(
        client.put(
            "/api/v1/rules/99999/category", json={"category_code": None}, headers=admin_headers
        ),
        404,
    )
    assert_problem(
        client.put(f"/api/v1/rules/{rule_id}/category", data="x", headers=admin_headers), 415
    )


def test_dashboard_json_for_admin_and_manager(client, built: County, shops):  # noqa: F811
    admin = built.factory.headers(built.admin)
    body = client.get("/api/v1/county/dashboard", headers=admin).get_json()
    assert len(body["months"]) == 12 and body["never_redeemed_count"] == 4
    manager = built.factory.headers(built.factory.user(Role.MANAGER, shop="GJY"))
    mine = client.get("/api/v1/county/dashboard", headers=manager).get_json()
    assert mine["shop_code"] == "GJY" and {d["shop_code"] for d in mine["shop_days"]} == {"GJY"}
    assert_problem(client.get("/api/v1/county/dashboard?shop_code=ZJB", headers=manager), 403)
    assert_problem(client.get("/api/v1/county/dashboard?month=2026-Q1", headers=admin), 422)

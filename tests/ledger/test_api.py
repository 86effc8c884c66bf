"""The ledger's JSON API answers as API.md says: status codes, bodies, problem+json errors."""

from __future__ import annotations

from datetime import datetime

import pytest

from accounts.auth import Role
from core.db import utcnow
from ledger import services as ledger
from ledger.models import Transfer
from tests.conftest import assert_problem, count_rows


@pytest.fixture
def admin_headers(factory):
    return factory.headers(factory.admin)


def test_villages_create_list_patch(client, factory, admin_headers):
    r = client.post(
        "/api/v1/villages",
        json={"code": "GJY", "name": "高家堰村", "redemption_floor": 100},
        headers=admin_headers,
    )
    assert r.status_code == 201
    assert r.json == {"code": "GJY", "name": "高家堰村", "redemption_floor": 100}
    # Chinese stays readable in the body, not \\u escapes.
    assert "高家堰村" in r.get_data(as_text=True)
    r = client.post(
        "/api/v1/villages", json={"code": "ZJB", "name": "郑家榜村"}, headers=admin_headers
    )
    assert r.status_code == 201 and r.json["redemption_floor"] == 0
    assert_problem(
        client.post("/api/v1/villages", json={"code": "ZJB", "name": "x"}, headers=admin_headers),
        409,
        "conflict",
    )
    r = client.get("/api/v1/villages", headers=admin_headers)
    assert r.status_code == 200
    assert [v["code"] for v in r.json["villages"]] == ["GJY", "ZJB"]
    r = client.patch("/api/v1/villages/ZJB", json={"redemption_floor": 30}, headers=admin_headers)
    assert r.status_code == 200 and r.json["redemption_floor"] == 30
    assert_problem(
        client.patch("/api/v1/villages/NOPE", json={"name": "x"}, headers=admin_headers),
        404,
        "not_found",
    )


def test_household_create_get_search(client, factory, admin_headers):
    factory.village("GJY")
    r = client.post(
        "/api/v1/households",
        json={
            "village_code": "GJY",
            "head_name": "覃德华",
            "members": [{"name": "覃德华"}, {"name": "向秀英"}],
            "address": "3组12号",
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.json
    body = r.json
    assert body["village_code"] == "GJY" and body["head_name"] == "覃德华"
    assert body["members"] == [{"name": "覃德华"}, {"name": "向秀英"}]
    assert (body["balance"], body["status"], body["address"]) == (0, "active", "3组12号")
    hid = body["id"]

    ledger.post_award(
        factory.session,
        actor=factory.admin,
        now=utcnow(),
        household_id=hid,
        idempotency_key="k",
        points=10,
        reason="x",
    )
    ledger.post_award(
        factory.session,
        actor=factory.admin,
        now=utcnow(),
        household_id=hid,
        idempotency_key="k2",
        points=-3,
        reason="x",
    )
    factory.session.commit()
    r = client.get(f"/api/v1/households/{hid}", headers=admin_headers)
    assert r.status_code == 200
    assert {
        "id",
        "village_code",
        "head_name",
        "members",
        "balance",
        "earned_total",
        "penalty_total",
        "redeemed_total",
        "status",
    } <= set(r.json)
    assert (r.json["balance"], r.json["earned_total"], r.json["penalty_total"]) == (7, 10, 3)
    assert (r.json["redeemed_total"], r.json["integrity_score"]) == (0, 7)

    r = client.get("/api/v1/households?q=秀英", headers=admin_headers)
    assert r.status_code == 200 and r.json["total"] == 1
    assert r.json["households"][0]["id"] == hid
    r = client.get("/api/v1/households?village_code=GJY&limit=1", headers=admin_headers)
    assert r.json["total"] == 1
    assert_problem(client.get("/api/v1/households/999999", headers=admin_headers), 404, "not_found")
    assert_problem(
        client.post(
            "/api/v1/households",
            json={"village_code": "NOPE", "head_name": "x"},
            headers=admin_headers,
        ),
        404,
        "not_found",
    )
    assert_problem(
        client.post(
            "/api/v1/households",
            json={"village_code": "GJY", "head_name": "   "},
            headers=admin_headers,
        ),
        422,
        "validation_error",
    )


def test_statement_shape_and_paging(client, factory, admin_headers):
    h = factory.household(balance=100)
    session, admin = factory.session, factory.admin
    ledger.redeem_points(
        session,
        actor=admin,
        now=utcnow(),
        household_id=h.id,
        shop_code="GJY",
        points=70,
        idempotency_key="r",
        sale_id=9,
    )
    ledger.post_award(
        session,
        actor=admin,
        now=utcnow(),
        household_id=h.id,
        idempotency_key="p",
        points=-5,
        reason="焚烧秸秆",
    )
    session.commit()
    r = client.get(f"/api/v1/households/{h.id}/statement", headers=admin_headers)
    assert r.status_code == 200
    assert r.json["household_id"] == h.id and r.json["next_before"] is None
    entries = r.json["entries"]
    assert [(e["kind"], e["points"], e["balance_after"]) for e in entries] == [
        ("penalty", -5, 25),
        ("redemption", -70, 30),
        ("award", 100, 100),
    ]
    assert set(entries[0]) == {
        "id",
        "at",
        "kind",
        "points",
        "balance_after",
        "reason",
        "shop_code",
        "sale_id",
    }
    assert (entries[1]["shop_code"], entries[1]["sale_id"]) == ("GJY", 9)
    assert entries[0]["shop_code"] is None and entries[0]["reason"] == "焚烧秸秆"
    # Times carry the county's offset.
    assert datetime.fromisoformat(entries[0]["at"]).utcoffset().total_seconds() == 8 * 3600

    r = client.get(f"/api/v1/households/{h.id}/statement?limit=2", headers=admin_headers)
    assert len(r.json["entries"]) == 2 and r.json["next_before"] == entries[1]["id"]
    r = client.get(
        f"/api/v1/households/{h.id}/statement?limit=2&before={r.json['next_before']}",
        headers=admin_headers,
    )
    assert [e["id"] for e in r.json["entries"]] == [entries[2]["id"]]
    assert_problem(
        client.get(f"/api/v1/households/{h.id}/statement?limit=0", headers=admin_headers),
        422,
        "validation_error",
    )
    assert_problem(
        client.get("/api/v1/households/424242/statement", headers=admin_headers), 404, "not_found"
    )


def test_rules_create_and_in_force(client, factory, admin_headers):
    factory.village("GJY")
    factory.village("ZJB")

    def post(body):
        return client.post("/api/v1/rules", json=body, headers=admin_headers)

    r = post({"code": "CLEAN_YARD", "title": "庭院整洁", "points": 3})
    assert r.status_code == 201
    assert r.json == {
        "id": r.json["id"],
        "code": "CLEAN_YARD",
        "title": "庭院整洁",
        "points": 3,
        "per": "household",
        "village_code": None,
        "limit_count": None,
        "limit_period": None,
    }
    assert post({"code": "GAMBLING", "title": "聚众赌博", "points": -10, "per": "person"}).json[
        "per"
    ] == ("person")
    r = post(
        {"code": "CLEAN_YARD", "title": "庭院整洁（高家堰）", "points": 5, "village_code": "GJY"}
    )
    assert r.status_code == 201 and r.json["village_code"] == "GJY"
    assert_problem(post({"code": "CLEAN_YARD", "title": "x", "points": 1}), 409, "conflict")
    assert_problem(post({"code": "Z", "title": "x", "points": 0}), 422, "validation_error")
    assert_problem(post({"code": "Z", "title": "x", "points": 1, "per": "dog"}), 422)
    assert_problem(
        post({"code": "Z", "title": "x", "points": 1, "village_code": "NOPE"}), 404, "not_found"
    )

    def in_force(query=""):
        r = client.get(f"/api/v1/rules{query}", headers=admin_headers)
        assert r.status_code == 200
        return {rule["code"]: (rule["points"], rule["village_code"]) for rule in r.json["rules"]}

    assert in_force("?village_code=GJY") == {
        "CLEAN_YARD": (5, "GJY"),
        "GAMBLING": (-10, None),
    }
    assert in_force("?village_code=ZJB") == {"CLEAN_YARD": (3, None), "GAMBLING": (-10, None)}
    assert in_force() == in_force("?village_code=ZJB")
    assert_problem(
        client.get("/api/v1/rules?village_code=NOPE", headers=admin_headers), 404, "not_found"
    )


def test_award_created_replayed_conflict(client, factory, admin_headers):
    h = factory.household()
    factory.rule("VOLUNTEER", 2, "person")
    body = {"household_id": h.id, "rule_code": "VOLUNTEER", "persons": 3, "idempotency_key": "a1"}
    r = client.post("/api/v1/awards", json=body, headers=admin_headers)
    assert r.status_code == 201
    first = r.json
    assert {"transfer_id", "points", "balance"} <= set(first)
    assert (first["points"], first["balance"]) == (6, 6)
    transfers = count_rows(Transfer)

    r = client.post("/api/v1/awards", json=body, headers=admin_headers)
    assert r.status_code == 201 and r.json == first
    assert count_rows(Transfer) == transfers

    assert_problem(
        client.post("/api/v1/awards", json=body | {"persons": 2}, headers=admin_headers),
        409,
        "idempotency_conflict",
    )
    assert count_rows(Transfer) == transfers

    # A penalty by explicit points takes the balance below zero.
    r = client.post(
        "/api/v1/awards",
        json={"household_id": h.id, "points": -10, "reason": "乱倒垃圾", "idempotency_key": "p1"},
        headers=admin_headers,
    )
    assert r.status_code == 201
    assert (r.json["points"], r.json["balance"], r.json["kind"]) == (-10, -4, "penalty")
    r = client.get(f"/api/v1/households/{h.id}", headers=admin_headers)
    assert (r.json["balance"], r.json["earned_total"], r.json["penalty_total"]) == (-4, 6, 10)


def test_award_refusals(client, factory, admin_headers):
    h = factory.household()
    factory.rule("VOLUNTEER", 2, "person")
    for body, status, code in (
        ({"rule_code": "NOPE"}, 404, "not_found"),
        ({"rule_code": "VOLUNTEER", "persons": 9}, 422, "validation_error"),
        ({"rule_code": "VOLUNTEER", "points": 2, "reason": "x"}, 422, "validation_error"),
        ({"points": 5}, 422, "validation_error"),
        ({"points": 0, "reason": "x"}, 422, "validation_error"),
        ({"points": 10_001, "reason": "x"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ):
        r = client.post(
            "/api/v1/awards",
            json={"household_id": h.id, "idempotency_key": "x"} | body,
            headers=admin_headers,
        )
        assert r.status_code == status, body
        assert_problem(r, status, code)
    assert count_rows(Transfer) == 0


def test_award_unknown_household(client, factory, admin_headers):
    for hid in (999_999, 2**40):
        r = client.post(
            "/api/v1/awards",
            json={"household_id": hid, "points": 1, "reason": "x", "idempotency_key": "k"},
            headers=admin_headers,
        )
        assert_problem(r, 404, "not_found")


def test_corrections(client, factory, admin_headers):
    h = factory.household(balance=50)
    r = client.post(
        "/api/v1/awards",
        json={"household_id": h.id, "points": 20, "reason": "录错", "idempotency_key": "w"},
        headers=admin_headers,
    )
    wrong = r.json["transfer_id"]
    body = {"transfer_id": wrong, "reason": "重复录入", "idempotency_key": "c1"}
    r = client.post("/api/v1/corrections", json=body, headers=admin_headers)
    assert r.status_code == 201
    assert (r.json["points"], r.json["balance"], r.json["kind"]) == (-20, 50, "correction")
    again = client.post("/api/v1/corrections", json=body, headers=admin_headers)
    assert again.status_code == 201 and again.json == r.json
    assert_problem(
        client.post(
            "/api/v1/corrections", json=body | {"idempotency_key": "c2"}, headers=admin_headers
        ),
        409,
        "conflict",
    )
    assert_problem(
        client.post(
            "/api/v1/corrections",
            json={"transfer_id": 99999, "reason": "x", "idempotency_key": "c3"},
            headers=admin_headers,
        ),
        404,
        "not_found",
    )
    ledger.redeem_points(
        factory.session,
        actor=factory.admin,
        now=utcnow(),
        household_id=h.id,
        shop_code="S",
        points=5,
        idempotency_key="r",
    )
    factory.session.commit()
    redemption = factory.session.query(Transfer).filter_by(kind="redemption").one().id
    assert_problem(
        client.post(
            "/api/v1/corrections",
            json={"transfer_id": redemption, "reason": "x", "idempotency_key": "c4"},
            headers=admin_headers,
        ),
        409,
        "conflict",
    )
    r = client.get(f"/api/v1/households/{h.id}", headers=admin_headers)
    assert (r.json["balance"], r.json["earned_total"]) == (45, 50)


def test_verify_endpoint(client, factory, admin_headers):
    h = factory.household(balance=10)
    factory.household(balance=5)
    client.post(
        "/api/v1/awards",
        json={"household_id": h.id, "points": -2, "reason": "x", "idempotency_key": "p"},
        headers=admin_headers,
    )
    r = client.get("/api/v1/ledger/verify", headers=admin_headers)
    assert r.status_code == 200
    assert r.json["ok"] is True and r.json["transfers_checked"] == 3
    assert r.json["first_bad_id"] is None and r.json["problems"] == []
    cadre = factory.user(Role.CADRE, village=h.village.code)
    assert_problem(
        client.get("/api/v1/ledger/verify", headers=factory.headers(cadre)), 403, "forbidden"
    )


def test_openapi_documents_the_ledger(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in (
        "/api/v1/villages",
        "/api/v1/households",
        "/api/v1/households/{household_id}",
        "/api/v1/households/{household_id}/statement",
        "/api/v1/ledger/verify",
        "/api/v1/rules",
        "/api/v1/awards",
        "/api/v1/awards/import",
        "/api/v1/corrections",
        "/api/v1/auth/token",
    ):
        assert path in paths


def test_a_village_names_its_home_shop_by_code(client, factory, admin_headers):
    factory.shop("GJY", name="高家堰超市")
    factory.shop("BSP", name="白沙坪诚信超市")
    r = client.post(
        "/api/v1/villages",
        json={"code": "ZJB", "name": "郑家榜村", "shop_code": "GJY"},
        headers=admin_headers,
    )
    assert r.status_code == 201 and r.json["shop_code"] == "GJY"
    problem = assert_problem(
        client.post(
            "/api/v1/villages",
            json={"code": "QTP", "name": "青树坪村", "shop_code": "NOPE"},
            headers=admin_headers,
        ),
        422,
        "validation_error",
    )
    assert "shop_code" in problem["errors"]
    listed = client.get("/api/v1/villages", headers=admin_headers).json["villages"]
    assert [(v["code"], v.get("shop_code")) for v in listed] == [("ZJB", "GJY")]
    r = client.patch("/api/v1/villages/ZJB", json={"shop_code": "BSP"}, headers=admin_headers)
    assert r.status_code == 200 and r.json["shop_code"] == "BSP"
    r = client.patch("/api/v1/villages/ZJB", json={"name": "郑家榜"}, headers=admin_headers)
    assert r.json["shop_code"] == "BSP"
    assert_problem(
        client.patch("/api/v1/villages/ZJB", json={"shop_code": "NOPE"}, headers=admin_headers),
        422,
        "validation_error",
    )
    # As a Chinese input method types it: full-width, with a stray space.
    r = client.patch("/api/v1/villages/ZJB", json={"shop_code": " ＧＪＹ"}, headers=admin_headers)
    assert r.status_code == 200 and r.json["shop_code"] == "GJY"
    r = client.patch("/api/v1/villages/ZJB", json={"shop_code": None}, headers=admin_headers)
    assert r.status_code == 200 and "shop_code" not in r.json
    # Only the office moves a village's escrow: its own cadre may not.
    cadre = factory.headers(factory.user("cadre", village="ZJB"))
    assert_problem(
        client.patch("/api/v1/villages/ZJB", json={"shop_code": "GJY"}, headers=cadre),
        403,
        "forbidden",
    )
    r = client.patch("/api/v1/villages/ZJB", json={"name": "郑家榜村"}, headers=cadre)
    assert r.status_code == 200

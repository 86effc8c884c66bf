"""The declarations API as API.md says: intake by role, idempotency, decisions, limits, photos."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image
from sqlalchemy import select

from audit.log import AuditEvent
from core.db import db
from declarations.models import Declaration, DeclarationPhoto
from ledger import services as ledger
from ledger.models import PointRule, Transfer
from tests.conftest import assert_problem, count_rows
from tests.declarations.conftest import declare, jpeg_bytes, photo, synthetic_photo


def _balance(household_id: int) -> int:
    db.session.rollback()
    try:
        return ledger.get_household(db.session, household_id).account.balance
    finally:
        db.session.rollback()


def _approve(client, headers, declaration_id, key=None):
    return client.post(
        f"/api/v1/declarations/{declaration_id}/approve",
        json={"idempotency_key": key or uuid.uuid4().hex},
        headers=headers,
    )


def _reject(client, headers, declaration_id, reason="照片看不清"):
    body = {} if reason is None else {"reason": reason}
    return client.post(f"/api/v1/declarations/{declaration_id}/reject", json=body, headers=headers)


# --- who may declare -------------------------------------------------------------------


def test_reporters_cadres_and_the_office_declare_for_the_village(client, village):
    for seed, who in enumerate(("reporter", "cadre", "admin")):
        response = declare(
            client,
            village.headers[who],
            household_id=village.home_id,
            persons=2,
            photos=[photo(seed)],
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        assert response.json == {"id": response.json["id"], "status": "pending"}
        row = db.session.get(Declaration, response.json["id"])
        assert row.submitted_by_id == village.users[who].id and row.persons == 2
        assert [p.position for p in row.photos] == [1]


def test_others_may_not_declare_and_nothing_is_recorded(client, village):
    for who, status, code in (
        ("reporter_qtp", 403, "forbidden"),
        ("cadre_qtp", 403, "forbidden"),
        ("manager", 403, "forbidden"),
        ("clerk", 403, "forbidden"),
        (None, 401, "unauthenticated"),
    ):
        headers = village.headers[who] if who else {}
        assert_problem(declare(client, headers, household_id=village.home_id), status, code)
    assert count_rows(Declaration) == 0 and count_rows(DeclarationPhoto) == 0


BAD = [
    ({"household_id": 999999}, 404, "not_found"),
    ({"rule_code": "NOPE"}, 404, "not_found"),
    ({"rule_code": "STRAW_BURN"}, 422, "validation_error"),  # a penalty is not a deed
    ({"rule_code": "ROAD", "persons": 2}, 422, "validation_error"),  # per household
    ({"persons": 4}, 422, "validation_error"),  # the household is three people
    ({"days_ago": -1}, 422, "validation_error"),  # tomorrow
    ({"days_ago": 400}, 422, "validation_error"),
    ({"household_id": "abc"}, 422, "validation_error"),
    ({"photos": []}, 422, "validation_error"),
    ({"photos": [photo(1), photo(2), photo(3), photo(4)]}, 422, "validation_error"),
    ({"photos": [b"this is not a picture"]}, 422, "validation_error"),
    ({"unexpected": "x"}, 422, "validation_error"),
]


def test_bad_declarations_are_refused_as_problems(client, village):
    for fields, status, code in BAD:
        fields = {"household_id": village.home_id, **fields}
        response = declare(client, village.headers["reporter"], **fields)
        body = assert_problem(response, status, code)
        assert body["detail"], fields
    assert count_rows(Declaration) == 0


def test_a_photo_over_10_mb_is_refused_with_413(client, village):
    big = jpeg_bytes(synthetic_photo(1)) + b"\x00" * (10 * 1024 * 1024)
    response = declare(
        client, village.headers["reporter"], household_id=village.home_id, photos=[big]
    )
    assert_problem(response, 413, "validation_error")


def test_json_is_not_a_declaration(client, village):
    response = client.post(
        "/api/v1/declarations",
        json={"household_id": village.home_id, "rule_code": "VOLUNTEER"},
        headers=village.headers["reporter"],
    )
    assert_problem(response, 415, "validation_error")


def test_full_width_numbers_and_codes_are_read_as_typed(client, village):
    response = declare(
        client,
        village.headers["reporter"],
        household_id=str(village.home_id).translate(
            str.maketrans("0123456789", "０１２３４５６７８９")
        ),
        rule_code="ＶＯＬＵＮＴＥＥＲ ",
        persons="２",
    )
    assert response.status_code == 201, response.get_data(as_text=True)


# --- idempotency ------------------------------------------------------------------------


def test_the_same_key_and_body_answer_the_first_declaration_again(client, village):
    headers = village.headers["reporter"]
    first = declare(client, headers, household_id=village.home_id, key="app-1", note="扫雪")
    again = declare(client, headers, household_id=village.home_id, key="app-1", note="扫雪")
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert count_rows(Declaration) == 1 and count_rows(DeclarationPhoto) == 1


@pytest.mark.parametrize(
    "change",
    [{"note": "另一件事"}, {"photos": [photo(99)]}, {"persons": 2}],
    ids=["note", "photo", "persons"],
)
def test_the_same_key_with_another_body_is_a_conflict(client, village, change):
    headers = village.headers["reporter"]
    declare(client, headers, household_id=village.home_id, key="app-2", note="扫雪")
    fields = {"note": "扫雪", **change}
    response = declare(client, headers, household_id=village.home_id, key="app-2", **fields)
    assert_problem(response, 409, "idempotency_conflict")
    assert count_rows(Declaration) == 1


# --- duplicates -------------------------------------------------------------------------


def test_a_resized_re_encoded_copy_is_accepted_but_marked_duplicate(client, village):
    picture = synthetic_photo(42, (800, 600))
    first = declare(
        client,
        village.headers["reporter"],
        household_id=village.home_id,
        photos=[jpeg_bytes(picture, quality=92)],
    )
    copy = jpeg_bytes(picture.resize((400, 300), Image.Resampling.BILINEAR), quality=60)
    # Another village's declaration: duplicates are caught across the county.
    second = declare(
        client, village.headers["reporter_qtp"], household_id=village.qtp_home_id, photos=[copy]
    )
    assert second.status_code == 201
    assert second.json == {
        "id": second.json["id"],
        "status": "pending",
        "duplicate_of": first.json["id"],
    }
    other = declare(
        client,
        village.headers["reporter"],
        household_id=village.home_id,
        photos=[jpeg_bytes(synthetic_photo(43, (800, 600)))],
    )
    assert "duplicate_of" not in other.json
    listed = client.get(
        f"/api/v1/declarations/{second.json['id']}", headers=village.headers["cadre_qtp"]
    ).json
    assert listed["duplicate_of"] == first.json["id"]
    assert listed["photos"][0]["duplicate_of"]["declaration_id"] == first.json["id"]
    # The reviewer in QTP may open the earlier (ZJB) photo it was flagged against...
    earlier = client.get(
        f"/api/v1/declarations/{first.json['id']}/photo", headers=village.headers["cadre_qtp"]
    )
    assert earlier.status_code == 200
    # ...but not ZJB's other photos.
    assert_problem(
        client.get(
            f"/api/v1/declarations/{other.json['id']}/photo", headers=village.headers["cadre_qtp"]
        ),
        403,
        "forbidden",
    )


# --- deciding ---------------------------------------------------------------------------


def test_approval_posts_through_the_rule_once_and_replays(client, village):
    made = declare(client, village.headers["reporter"], household_id=village.home_id, persons=3)
    declaration_id = made.json["id"]
    before = _balance(village.home_id)
    approved = _approve(client, village.headers["cadre"], declaration_id, key="ok-1")
    assert approved.status_code == 200, approved.get_data(as_text=True)
    assert approved.json["status"] == "approved" and approved.json["transfer_id"]
    assert _balance(village.home_id) == before + 6  # 2 points a person, 3 persons
    transfer = db.session.get(Transfer, approved.json["transfer_id"])
    assert transfer.kind == "award" and transfer.rule_id is not None and transfer.persons == 3
    # A retry with the same key: the same answer, nothing posted again.
    again = _approve(client, village.headers["cadre"], declaration_id, key="ok-1")
    assert again.status_code == 200 and again.json == approved.json
    assert _balance(village.home_id) == before + 6
    # Another key (or another cadre): already decided.
    assert_problem(_approve(client, village.headers["cadre2"], declaration_id), 409, "conflict")
    assert_problem(_reject(client, village.headers["cadre2"], declaration_id), 409, "conflict")
    # The same key on another declaration: a different request under a used key.
    other = declare(client, village.headers["reporter"], household_id=village.other_home_id)
    assert_problem(
        _approve(client, village.headers["cadre"], other.json["id"], key="ok-1"),
        409,
        "idempotency_conflict",
    )
    assert _balance(village.home_id) == before + 6
    assert count_rows(Transfer) == 1


def test_rejection_needs_a_reason_and_is_final(client, village):
    made = declare(client, village.headers["reporter"], household_id=village.home_id)
    declaration_id = made.json["id"]
    assert_problem(_reject(client, village.headers["cadre"], declaration_id, None), 422)
    assert_problem(_reject(client, village.headers["cadre"], declaration_id, "   "), 422)
    rejected = _reject(client, village.headers["cadre"], declaration_id, "照片是去年的")
    assert rejected.status_code == 200
    assert rejected.json == {"id": declaration_id, "status": "rejected", "reason": "照片是去年的"}
    assert_problem(_approve(client, village.headers["cadre2"], declaration_id), 409, "conflict")
    assert_problem(_reject(client, village.headers["cadre2"], declaration_id), 409, "conflict")
    assert count_rows(Transfer) == 0


@pytest.mark.parametrize("who", ["cadre", "admin"])
def test_nobody_decides_their_own_declaration(client, village, who):
    made = declare(client, village.headers[who], household_id=village.home_id)
    assert_problem(_approve(client, village.headers[who], made.json["id"]), 403, "forbidden")
    assert_problem(_reject(client, village.headers[who], made.json["id"]), 403, "forbidden")
    assert count_rows(Transfer) == 0
    # Another cadre of the village may.
    assert _approve(client, village.headers["cadre2"], made.json["id"]).status_code == 200


def test_only_the_village_s_cadres_and_the_office_decide(client, village):
    made = declare(client, village.headers["reporter"], household_id=village.home_id)
    for who in ("reporter", "cadre_qtp", "manager"):
        assert_problem(_approve(client, village.headers[who], made.json["id"]), 403, "forbidden")
        assert_problem(_reject(client, village.headers[who], made.json["id"]), 403, "forbidden")


def test_deciding_a_missing_declaration_is_not_found(client, village):
    assert_problem(_approve(client, village.headers["cadre"], 424242), 404, "not_found")
    assert_problem(_reject(client, village.headers["admin"], 424242), 404, "not_found")


# --- limits per rule ------------------------------------------------------------------


def test_a_rule_s_limit_refuses_declarations_beyond_it_with_the_reason(client, village):
    headers = village.headers["admin"]
    created = client.post(
        "/api/v1/rules",
        json={
            "code": "CLEAN",
            "title": "打扫公共区域",
            "points": 3,
            "per": "household",
            "village_code": "ZJB",
            "limit_count": 1,
            "limit_period": "day",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.json["limit_count"] == 1 and created.json["limit_period"] == "day"
    reporter = village.headers["reporter"]
    first = declare(client, reporter, household_id=village.home_id, rule_code="CLEAN")
    assert first.status_code == 201
    refused = assert_problem(
        declare(client, reporter, household_id=village.home_id, rule_code="CLEAN"), 409, "conflict"
    )
    assert "打扫公共区域" in refused["detail"] and "1" in refused["detail"]
    # Another day, another household: within their own limits.
    assert (
        declare(
            client, reporter, household_id=village.home_id, rule_code="CLEAN", days_ago=1
        ).status_code
        == 201
    )
    assert (
        declare(client, reporter, household_id=village.other_home_id, rule_code="CLEAN").status_code
        == 201
    )
    # A rejected declaration does not count.
    _reject(client, village.headers["cadre"], first.json["id"])
    assert (
        declare(client, reporter, household_id=village.home_id, rule_code="CLEAN").status_code
        == 201
    )


def test_a_rule_limit_needs_its_period(client, village):
    response = client.post(
        "/api/v1/rules",
        json={"code": "X1", "title": "x", "points": 3, "limit_count": 2},
        headers=village.headers["admin"],
    )
    assert_problem(response, 422, "validation_error")
    rule = db.session.scalar(select(PointRule).where(PointRule.code == "ROAD"))
    assert rule.limit_count is None


# --- reading ----------------------------------------------------------------------------


def test_lists_by_status_and_village_within_the_reader_s_reach(client, village):
    zjb = declare(client, village.headers["reporter"], household_id=village.home_id).json["id"]
    qtp = declare(client, village.headers["reporter_qtp"], household_id=village.qtp_home_id).json[
        "id"
    ]
    _approve(client, village.headers["cadre"], zjb)

    def ids(who, query=""):
        response = client.get(f"/api/v1/declarations{query}", headers=village.headers[who])
        assert response.status_code == 200, response.get_data(as_text=True)
        return [d["id"] for d in response.json["declarations"]]

    assert ids("admin") == [qtp, zjb]
    assert ids("admin", "?village_code=QTP") == [qtp]
    assert ids("admin", "?status=approved") == [zjb]
    assert ids("reporter") == [zjb]
    assert ids("cadre_qtp", "?status=pending") == [qtp]
    assert_problem(
        client.get("/api/v1/declarations?village_code=ZJB", headers=village.headers["cadre_qtp"]),
        403,
        "forbidden",
    )
    assert_problem(
        client.get("/api/v1/declarations?status=maybe", headers=village.headers["admin"]), 422
    )
    assert_problem(client.get("/api/v1/declarations", headers=village.headers["clerk"]), 403)


def test_the_photo_is_the_stored_jpeg_without_exif(client, village):
    from PIL import ExifTags

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    upload = jpeg_bytes(synthetic_photo(5, (640, 480)), exif=exif)
    made = declare(
        client, village.headers["reporter"], household_id=village.home_id, photos=[upload, photo(6)]
    )
    declaration_id = made.json["id"]
    headers = village.headers["cadre"]
    full = client.get(f"/api/v1/declarations/{declaration_id}/photo", headers=headers)
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    assert b"TestCam" not in full.data
    assert Image.open(io.BytesIO(full.data)).size == (640, 480)
    thumb = client.get(
        f"/api/v1/declarations/{declaration_id}/photo?position=2&size=thumb", headers=headers
    )
    assert thumb.status_code == 200 and len(thumb.data) < len(full.data)
    assert_problem(
        client.get(f"/api/v1/declarations/{declaration_id}/photo?position=3", headers=headers), 404
    )
    assert_problem(
        client.get(
            f"/api/v1/declarations/{declaration_id}/photo", headers=village.headers["reporter_qtp"]
        ),
        403,
    )


def test_every_step_is_in_the_audit_log(client, village):
    made = declare(client, village.headers["reporter"], household_id=village.home_id, note="修路")
    second = declare(client, village.headers["reporter"], household_id=village.other_home_id)
    _approve(client, village.headers["cadre"], made.json["id"])
    _reject(client, village.headers["cadre"], second.json["id"], "不是本户")
    db.session.rollback()
    events = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.like("declarations_api.%"))
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.actor) for e in events] == [
        ("declarations_api.submit_declaration", "leader-zjb"),
        ("declarations_api.submit_declaration", "leader-zjb"),
        ("declarations_api.approve_declaration", "cadre-zjb"),
        ("declarations_api.reject_declaration", "cadre-zjb"),
    ]
    assert "修路" in events[0].detail and "photo0.jpg" in events[0].detail
    assert "不是本户" in events[3].detail
    db.session.rollback()

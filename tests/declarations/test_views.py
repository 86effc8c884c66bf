"""The declaration pages: declaring from the phone page, the review queue, the month's 公示."""

from __future__ import annotations

import io
import re

from core.db import db
from declarations.models import Declaration
from ledger import services as ledger
from tests.conftest import count_rows
from tests.declarations.conftest import declare, photo, today
from tests.helpers.pages import form_value, hidden_fields, sign_in


def _page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def test_a_group_leader_declares_from_the_phone_page(client, village):
    village.users["reporter"]  # made before signing in
    sign_in(client, "leader-zjb")
    # Signing in lands a group leader on the declaration page.
    assert client.get("/").headers["Location"].endswith("/declarations/new")
    page = _page(client, "/declarations/new?q=覃")
    assert "覃德华" in page and "田建国" not in page
    assert 'name="viewport"' in page
    page = _page(client, f"/declarations/new?household={village.home_id}")
    assert 'accept="image/*"' in page and 'capture="environment"' in page
    assert "参加志愿服务" in page and "配合乡村建设" in page
    assert "焚烧秸秆" not in page  # penalties are not declared
    fields = hidden_fields(page)
    response = client.post(
        f"/declarations/new?household={village.home_id}",
        data={
            **fields,
            "rule_code": "VOLUNTEER",
            "persons": "２",
            "happened_on": today().isoformat(),
            "note": "帮五保户挑水",
            "photo": [(io.BytesIO(photo(11)), "IMG_0001.JPG"), (io.BytesIO(b""), "")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].endswith("/declarations/new")
    declaration = db.session.scalars(db.select(Declaration)).one()
    assert (declaration.persons, declaration.note, declaration.status) == (
        2,
        "帮五保户挑水",
        "pending",
    )
    assert declaration.submitted_by_id == village.users["reporter"].id
    assert "已提交" in _page(client, "/declarations/new")
    # A resent form (the same key) records nothing twice.
    again = client.post(
        f"/declarations/new?household={village.home_id}",
        data={
            **fields,
            "rule_code": "VOLUNTEER",
            "persons": "2",
            "happened_on": today().isoformat(),
            "note": "帮五保户挑水",
            "photo": [(io.BytesIO(photo(11)), "IMG_0001.JPG")],
        },
        content_type="multipart/form-data",
    )
    assert again.status_code == 302 and count_rows(Declaration) == 1


def test_a_refused_declaration_shows_why_and_records_nothing(client, village):
    village.users["reporter"]
    sign_in(client, "leader-zjb")
    page = _page(client, f"/declarations/new?household={village.home_id}")
    base = {**hidden_fields(page), "rule_code": "VOLUNTEER", "happened_on": today().isoformat()}
    url = f"/declarations/new?household={village.home_id}"
    no_photo = client.post(url, data=base, content_type="multipart/form-data")
    assert no_photo.status_code == 422
    assert "照片" in no_photo.get_data(as_text=True)
    not_a_picture = client.post(
        url,
        data={**base, "photo": (io.BytesIO(b"%PDF-1.4 not a photo"), "deed.jpg")},
        content_type="multipart/form-data",
    )
    assert not_a_picture.status_code == 422
    assert "JPEG" in not_a_picture.get_data(as_text=True)
    assert count_rows(Declaration) == 0
    # Another village's household is not this group leader's to declare for.
    assert client.get(f"/declarations/new?household={village.qtp_home_id}").status_code == 403


def test_scanning_a_member_card_opens_its_household(client, village, factory):
    village.users["reporter"]
    _card, payload = factory.card(ledger.get_household(db.session, village.home_id))
    _card, other_payload = factory.card(ledger.get_household(db.session, village.qtp_home_id))
    db.session.commit()
    token = sign_in(client, "leader-zjb")
    found = client.post(
        "/declarations/new/card", data={"csrf_token": token, "payload": payload.lower()}
    )
    assert found.status_code == 302
    assert found.headers["Location"].endswith(f"/declarations/new?household={village.home_id}")
    for junk, said in ((other_payload, "村"), ("IC1.garbage", "会员卡")):
        refused = client.post("/declarations/new/card", data={"csrf_token": token, "payload": junk})
        assert refused.status_code == 302
        assert refused.headers["Location"].endswith("/declarations/new")
        page = _page(client, "/declarations/new")
        assert "flash-error" in page and said in page


def test_the_review_queue_shows_the_photo_points_and_duplicate_and_decides(client, village):
    first = declare(
        client, village.headers["reporter"], household_id=village.home_id, photos=[photo(21)]
    )
    copy = declare(
        client,
        village.headers["reporter"],
        household_id=village.other_home_id,
        photos=[photo(21)],
        persons=2,
    )
    assert copy.json["duplicate_of"] == first.json["id"]
    village.users["cadre"]
    sign_in(client, "cadre-zjb")
    page = _page(client, "/declarations/review")
    assert f"/declarations/{first.json['id']}/photos/1" in page
    assert "+2" in page and "参加志愿服务" in page and "autofocus" in page
    key = form_value(page, "idempotency_key")
    token = form_value(page, "csrf_token")
    approved = client.post(
        f"/declarations/{first.json['id']}/approve",
        data={"csrf_token": token, "idempotency_key": key},
    )
    assert approved.status_code == 302
    assert ledger.get_household(db.session, village.home_id).account.balance == 2
    # Next comes the copy, with the earlier photo beside it.
    page = _page(client, "/declarations/review")
    assert 'id="duplicate-warning"' in page
    assert f"/declarations/{first.json['id']}/photos/1?size=thumb" in page
    assert "+4" in page
    no_reason = client.post(
        f"/declarations/{copy.json['id']}/reject", data={"csrf_token": token, "reason": " "}
    )
    assert no_reason.status_code == 422 and 'id="review"' in no_reason.get_data(as_text=True)
    rejected = client.post(
        f"/declarations/{copy.json['id']}/reject",
        data={"csrf_token": token, "reason": "同一张照片"},
    )
    assert rejected.status_code == 302
    assert "同一张照片" in _page(client, f"/declarations/{copy.json['id']}")
    assert 'id="queue-empty"' in _page(client, "/declarations/review")
    twice = client.post(
        f"/declarations/{copy.json['id']}/approve",
        data={"csrf_token": token, "idempotency_key": "x"},
    )
    assert twice.status_code == 409


def test_a_cadre_cannot_decide_their_own_declaration_on_the_page(client, village):
    made = declare(client, village.headers["cadre"], household_id=village.home_id)
    token = sign_in(client, "cadre-zjb")
    page = _page(client, "/declarations/review")
    assert 'id="approve-form"' not in page
    response = client.post(
        f"/declarations/{made.json['id']}/approve",
        data={"csrf_token": token, "idempotency_key": "k"},
    )
    assert response.status_code == 403
    assert (
        count_rows(Declaration) == 1
        and db.session.get(Declaration, made.json["id"]).status == "pending"
    )


def test_the_month_s_public_list_is_printable(client, village):
    made = declare(
        client, village.headers["reporter"], household_id=village.home_id, persons=3, note="修路"
    )
    client.post(
        f"/api/v1/declarations/{made.json['id']}/approve",
        json={"idempotency_key": "pub-1"},
        headers=village.headers["cadre"],
    )
    declare(
        client, village.headers["reporter"], household_id=village.other_home_id, photos=[photo(5)]
    )
    sign_in(client, "leader-zjb")
    page = _page(client, "/declarations/public/ZJB")
    assert "郑家榜村" in page and "覃德华" in page and "修路" in page
    assert "田建国" not in page  # still pending
    assert re.search(r'id="notice-total">\s*\+6', page)
    assert "declarations.css" in page and "data-print-page" in page
    month = today().strftime("%Y-%m")
    assert "覃德华" in _page(client, f"/declarations/public/ZJB?month={month}")
    assert "覃德华" not in _page(client, "/declarations/public/ZJB?month=2020-01")
    assert _page(client, "/declarations/public/ZJB?month=garbage")
    assert client.get("/declarations/public/QTP").status_code == 403


def test_a_group_leader_sees_no_shop_and_decides_nothing(client, village):
    made = declare(client, village.headers["cadre"], household_id=village.home_id)
    village.users["reporter"]
    token = sign_in(client, "leader-zjb")
    for url in ("/declarations/review", "/counter", "/households", "/stock"):
        assert client.get(url).status_code == 403, url
    response = client.post(
        f"/declarations/{made.json['id']}/approve",
        data={"csrf_token": token, "idempotency_key": "k"},
    )
    assert response.status_code == 403
    page = _page(client, f"/declarations/{made.json['id']}")
    assert 'id="approve-form"' not in page
    photo_page = client.get(f"/declarations/{made.json['id']}/photos/1")
    assert photo_page.status_code == 200 and photo_page.mimetype == "image/jpeg"


def test_a_cadre_sets_a_rule_s_declaration_limit_on_the_rules_page(client, village):
    village.users["cadre"]
    token = sign_in(client, "cadre-zjb")
    response = client.post(
        "/rules",
        data={
            "csrf_token": token,
            "code": "CLEAN",
            "title": "打扫公共区域",
            "points": "3",
            "per": "household",
            "village_code": "ZJB",
            "limit_count": "１",
            "limit_period": "week",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    page = _page(client, "/rules?village=ZJB")
    assert "每周 1 次" in page
    rule = ledger.find_rule(db.session, "CLEAN", ledger.get_village(db.session, "ZJB"))
    assert (rule.limit_count, rule.limit_period) == (1, "week")

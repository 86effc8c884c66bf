"""Card pages through the test client: the household page's card actions, the balance page."""

from __future__ import annotations

from typing import Any

import pytest
from flask import render_template_string
from flask_login import login_user
from sqlalchemy import select

from core.db import db
from member_cards.models import MemberCard, MemberCardEvent
from tests.member_cards.conftest import County, csrf_token, login

INCLUDE = '{% include "member_cards/_household_cards.html" %}'


def cards_of(household_id: int) -> list[MemberCard]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(MemberCard)
            .where(MemberCard.household_id == household_id)
            .order_by(MemberCard.number)
        )
    )


def post_form(client: Any, url: str, **data: Any) -> Any:
    return client.post(url, data={"csrf_token": csrf_token(client), **data})


# --- the household page's card section -----------------------------------------------


def test_include_shows_the_card_and_its_actions(app: Any, factory: Any, county: County) -> None:
    card, _payload = factory.card(county.home)
    factory.card(county.home)
    with app.test_request_context(f"/households/{county.home.id}"):
        login_user(county.cadre)
        page = render_template_string(INCLUDE, household=county.home)
    current = cards_of(county.home.id)[-1]
    assert current.serial in page and card.serial in page
    assert f"/api/v1/cards/{current.id}/qr.png" in page
    assert f"/cards/{current.id}/revoke" in page
    assert f"/cards/{current.id}/reprint" in page
    assert f"/households/{county.home.id}/cards/sheet.pdf" in page
    assert "/villages/ZJB/cards/sheet.pdf" in page
    assert 'name="csrf_token"' in page
    assert f'value="/households/{county.home.id}#member-cards"' in page


def test_include_offers_to_issue_when_there_is_no_card(
    app: Any, factory: Any, county: County
) -> None:
    with app.test_request_context(f"/households/{county.home.id}"):
        login_user(county.admin)
        page = render_template_string(INCLUDE, household=county.home)
    assert f"/households/{county.home.id}/cards" in page
    assert "/revoke" not in page


def test_include_shows_nothing_to_other_villages(app: Any, factory: Any, county: County) -> None:
    factory.card(county.home)
    with app.test_request_context("/"):
        login_user(county.other_cadre)
        assert render_template_string(INCLUDE, household=county.home).strip() == ""
    with app.test_request_context("/"):
        assert render_template_string(INCLUDE, household=county.home).strip() == ""


def test_issue_revoke_and_reprint_through_the_page(
    client: Any, factory: Any, county: County
) -> None:
    login(client, "cadre-zjb")
    back = f"/households/{county.home.id}#member-cards"
    response = post_form(client, f"/households/{county.home.id}/cards", next=back)
    assert response.status_code == 302 and response.headers["Location"] == back
    [card] = cards_of(county.home.id)
    assert card.status == "active"

    refused = post_form(client, f"/cards/{card.id}/revoke", next=back, reason="")
    assert refused.status_code == 302
    assert cards_of(county.home.id)[0].status == "active"

    reprinted = post_form(client, f"/cards/{card.id}/reprint", next=back)
    assert reprinted.status_code == 200 and reprinted.mimetype == "application/pdf"
    assert "attachment" in reprinted.headers["Content-Disposition"]

    revoked = post_form(client, f"/cards/{card.id}/revoke", next=back, reason="被盗")
    assert revoked.status_code == 302
    [card] = cards_of(county.home.id)
    assert (card.status, card.revoke_reason) == ("revoked", "被盗")
    kinds = [e.kind for e in db.session.scalars(select(MemberCardEvent).order_by("id"))]
    assert kinds == ["issued", "reprinted", "revoked"]

    # A revoked card cannot be reprinted: the page says so and nothing is recorded.
    again = post_form(client, f"/cards/{card.id}/reprint", next=back)
    assert again.status_code == 302
    assert len(db.session.scalars(select(MemberCardEvent)).all()) == 3


def test_reprint_records_nothing_when_the_font_is_missing(
    app: Any, client: Any, factory: Any, county: County
) -> None:
    card, _payload = factory.card(county.home)
    app.config["CJK_FONT_PATH"] = "/nowhere/font.ttc"
    login(client, "cadre-zjb")
    response = post_form(client, f"/cards/{card.id}/reprint", next="/")
    assert response.status_code == 302
    db.session.rollback()
    assert [e.kind for e in db.session.scalars(select(MemberCardEvent))] == ["issued"]
    follow = client.get("/", follow_redirects=False)
    assert follow.status_code in (200, 302)


def test_redirects_stay_on_this_site(client: Any, factory: Any, county: County) -> None:
    login(client, "cadre-zjb")
    for target in (
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example/x",
        "javascript:alert(1)",
    ):
        response = post_form(client, f"/households/{county.home.id}/cards", next=target)
        assert response.status_code == 302
        assert "evil" not in response.headers["Location"]
        assert not response.headers["Location"].startswith("javascript")


def test_other_village_and_shop_staff_are_refused(
    client: Any, factory: Any, county: County
) -> None:
    login(client, "cadre-gjy")
    response = post_form(client, f"/households/{county.home.id}/cards", next="/")
    assert response.status_code == 403
    assert cards_of(county.home.id) == []
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    login(client, "clerk-gjy")
    response = post_form(client, f"/households/{county.home.id}/cards", next="/")
    assert response.status_code == 403
    assert cards_of(county.home.id) == []


def test_page_forms_need_csrf(client: Any, factory: Any, county: County) -> None:
    login(client, "cadre-zjb")
    response = client.post(f"/households/{county.home.id}/cards", data={"next": "/"})
    assert response.status_code == 400
    assert cards_of(county.home.id) == []


def test_issue_missing_through_the_page(client: Any, factory: Any, county: County) -> None:
    second = factory.household(county.zjb, head="李桂兰", members=("李桂兰",))
    login(client, "cadre-zjb")
    response = post_form(client, "/villages/ZJB/cards/issue-missing", next="/")
    assert response.status_code == 302
    assert len(cards_of(county.home.id)) == 1 and len(cards_of(second.id)) == 1
    assert cards_of(county.away.id) == []


# --- the public balance page ---------------------------------------------------------


def lookup(client: Any, payload: Any) -> Any:
    return client.post(
        "/balance",
        json={"payload": payload},
        headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"},
    )


def test_balance_page_needs_no_login_and_focuses_the_scan_field(client: Any) -> None:
    response = client.get("/balance")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'name="payload"' in page and "autofocus" in page
    assert 'data-clear-after="30' in page
    assert "balance.js" in page


def test_balance_lookup_shows_points_score_and_recent_entries(
    client: Any, factory: Any, county: County
) -> None:
    _card, payload = factory.card(county.away)
    response = lookup(client, payload)
    assert response.status_code == 200
    body = response.get_json()
    assert body["found"] is True
    html = body["html"]
    assert "田建国" in html and "高家堰村" in html
    # 300 points, 100 kept in reserve by the village: 200 can be spent.
    assert "data-spendable>200<" in html
    assert "data-score>300<" in html
    assert "开户积分" in html


@pytest.mark.parametrize("case", ["altered", "revoked", "unknown", "junk", "missing"])
def test_balance_page_reveals_nothing_for_unusable_cards(
    app: Any, client: Any, factory: Any, county: County, case: str
) -> None:
    from member_cards import signing

    _card, payload = factory.card(county.home)
    keys = signing.keyring_from_config(app.config)
    unusable = {
        "altered": payload[:-1] + ("A" if payload[-1] != "A" else "B"),
        "unknown": signing.encode(keys, county.away.id, 1),
        "junk": "6901234567892",
        "missing": None,
        "revoked": payload,
    }[case]
    if case == "revoked":
        factory.card(county.home)
    reference = lookup(client, "not a card").get_json()
    response = lookup(client, unusable)
    assert response.status_code == 200
    assert response.get_json() == reference
    assert reference["found"] is False
    assert "覃德华" not in reference["html"]


def test_balance_page_works_without_javascript(client: Any, factory: Any, county: County) -> None:
    _card, payload = factory.card(county.home)
    response = client.post(
        "/balance", data={"csrf_token": csrf_token(client), "payload": payload + "\r\n"}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "覃德华" in page
    assert 'http-equiv="refresh"' in page and "30;url=/balance" in page


def test_balance_lookup_needs_the_page_token(client: Any, factory: Any, county: County) -> None:
    _card, payload = factory.card(county.home)
    response = client.post("/balance", json={"payload": payload})
    assert response.status_code == 400
    assert "覃德华" not in response.get_data(as_text=True)


def test_balance_lookups_are_rate_limited(
    app: Any, client: Any, factory: Any, county: County
) -> None:
    _card, payload = factory.card(county.home)
    app.config["CARD_BALANCE_RATE_LIMIT"] = "3 per minute"
    token = csrf_token(client)
    headers = {"X-CSRFToken": token}
    answers = [
        client.post("/balance", json={"payload": payload}, headers=headers) for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "覃德华" not in answers[-1].get_data(as_text=True)
    assert answers[-1].get_json()["found"] is False
    # The page itself stays up, and the form post is limited too.
    assert client.get("/balance").status_code == 200
    form = client.post("/balance", data={"csrf_token": token, "payload": payload})
    assert form.status_code == 429
    # Another address has its own allowance.
    other = client.post(
        "/balance",
        json={"payload": payload},
        headers=headers,
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert other.status_code == 200


def test_balance_clear_time_is_configurable(app: Any, client: Any) -> None:
    app.config["CARD_BALANCE_CLEAR_SECONDS"] = 1.5
    assert 'data-clear-after="1.5"' in client.get("/balance").get_data(as_text=True)


def test_the_household_page_can_show_the_qr_with_its_session(
    client: Any, factory: Any, county: County
) -> None:
    card, _payload = factory.card(county.home)
    login(client, "cadre-zjb")
    response = client.get(f"/api/v1/cards/{card.id}/qr.png")
    assert response.status_code == 200 and response.mimetype == "image/png"

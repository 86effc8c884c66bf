"""A card's state in the same three words everywhere: 有效, 已作废, 未发卡."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask_babel import force_locale

from core.db import db, utcnow
from member_cards import services
from member_cards.labels import card_status_word, household_card_status
from tests.member_cards.conftest import County, csrf_token, login


def card_cell(page: str, household_id: int) -> str:
    """The household list's card cell of one household, as text."""
    row = page.split(f'href="/households/{household_id}"', 1)[1].split("</tr>", 1)[0]
    cell = row.rsplit("<td", 1)[1]
    return html.unescape(re.sub(r"<[^>]+>", "", "<td" + cell)).strip()


def facts_card(page: str) -> str:
    """The household page's "card" fact, as text."""
    dd = page.split("<dt>积分卡</dt>", 1)[1].split("</dd>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", "", dd)).strip()


def revoke(client: Any, card_id: int, household_id: int) -> None:
    response = client.post(
        f"/cards/{card_id}/revoke",
        data={
            "csrf_token": csrf_token(client),
            "reason": "丢失",
            "next": f"/households/{household_id}",
        },
    )
    assert response.status_code == 302


def test_the_words(app: Any) -> None:
    with app.test_request_context(), force_locale("zh_CN"):
        assert card_status_word("active") == "有效"
        assert card_status_word("revoked") == "已作废"
        assert card_status_word("replaced") == "已作废（已换新卡）"
        assert card_status_word(None) == "未发卡"
    assert household_card_status([]) is None
    assert household_card_status(["replaced", "active"]) == "active"
    assert household_card_status(["replaced", "revoked"]) == "revoked"
    assert household_card_status(["revoked"]) == "revoked"


def test_never_issued_working_and_revoked_on_the_household_pages(
    client: Any, factory: Any, county: County
) -> None:
    login(client, county.cadre.username)
    household_id = county.home.id
    assert facts_card(client.get(f"/households/{household_id}").get_data(as_text=True)) == "未发卡"
    assert card_cell(client.get("/households").get_data(as_text=True), household_id) == "未发卡"

    card, _payload = factory.card(county.home)
    serial, card_id = card.serial, card.id
    page = client.get(f"/households/{household_id}").get_data(as_text=True)
    assert facts_card(page) == f"有效 {serial}"
    assert card_cell(client.get("/households").get_data(as_text=True), household_id) == (
        f"有效 {serial}"
    )

    revoke(client, card_id, household_id)
    page = client.get(f"/households/{household_id}").get_data(as_text=True)
    # The complaint: after revoking, the page said 未发卡.
    assert facts_card(page) == "已作废"
    assert "未发卡" not in page.split("<main>", 1)[1].split('id="member-cards"', 1)[0]
    assert card_cell(client.get("/households").get_data(as_text=True), household_id) == "已作废"
    section = html.unescape(page.split('id="member-cards"', 1)[1])
    assert "已作废 本户没有可用的积分卡。" in re.sub(r"<[^>]+>|\s+", " ", section).replace(
        "  ", " "
    )


def test_a_replaced_card_reads_revoked_and_says_why(
    client: Any, factory: Any, county: County
) -> None:
    first, _payload = factory.card(county.home)
    second, _payload = factory.card(county.home)
    first_serial, second_serial = first.serial, second.serial
    login(client, county.admin.username)
    page = html.unescape(client.get(f"/households/{county.home.id}").get_data(as_text=True))
    assert facts_card(page) == f"有效 {second_serial}"
    history = page.split("card-history", 1)[1]
    assert re.search(rf"{first_serial}</td>\s*<td>已作废（已换新卡） → {second_serial}", history)
    assert re.search(rf"{second_serial}</td>\s*<td>有效", history)


def test_the_counter_and_the_api_name_a_revoked_card_so(
    client: Any, factory: Any, county: County
) -> None:
    card, payload = factory.card(county.home)
    services.revoke_card(db.session, actor=county.admin, now=utcnow(), card_id=card.id, reason="x")
    db.session.commit()
    headers = factory.headers(county.clerk)
    response = client.post(
        "/api/v1/shops/GJY/customer",
        json={"card_payload": payload},
        headers={**headers, "Accept-Language": "zh-CN"},
    )
    assert response.status_code == 410
    assert "已作废" in response.get_json()["detail"]


def test_the_balance_page_says_the_card_is_valid(client: Any, factory: Any, county: County) -> None:
    card, payload = factory.card(county.home)
    response = client.post("/balance", data={"csrf_token": csrf_token(client), "payload": payload})
    page = html.unescape(response.get_data(as_text=True))
    assert f"积分卡 {card.serial} · 有效" in page


@pytest.mark.parametrize("role", ["admin", "cadre"])
def test_status_words_follow_the_language(
    client: Any, factory: Any, county: County, role: str
) -> None:
    login(client, getattr(county, role).username)
    page = client.get(f"/households/{county.home.id}?lang=en").get_data(as_text=True)
    assert facts_card(page.replace("<dt>Card</dt>", "<dt>积分卡</dt>")) == "No card issued"

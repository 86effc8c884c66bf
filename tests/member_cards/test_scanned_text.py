"""A card scanned with Caps Lock on, or typed full-width, is the same card everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from member_cards import services, signing
from tests.helpers.text import full_width
from tests.member_cards.conftest import County, assert_problem, csrf_token

SPELLINGS = {
    "lower": str.lower,
    "full_width": full_width,
    "full_width_lower": lambda payload: full_width(payload.lower()),
    "scanner_noise": lambda payload: "\ufeff\u3000" + payload.lower() + "\r\n",
}


@pytest.fixture(params=sorted(SPELLINGS))
def spelled(request: pytest.FixtureRequest, factory: Any, county: County) -> tuple[str, str]:
    """The home household's card payload, and the same payload as a scan typed it."""
    _card, payload = factory.card(county.home)
    return payload, SPELLINGS[request.param](payload)


def test_the_service_resolves_every_spelling_to_the_card(app: Any, session: Any, spelled) -> None:
    payload, typed = spelled
    assert typed != payload
    keys = signing.keyring_from_config(app.config)
    card = services.resolve_card(session, payload=typed, keyring=keys)
    assert card.id == services.resolve_card(session, payload=payload, keyring=keys).id
    assert card.household.head_name == "覃德华"


def test_the_resolve_api_reads_every_spelling(client: Any, factory: Any, county, spelled) -> None:
    _payload, typed = spelled
    response = client.post(
        "/api/v1/cards/resolve",
        json={"payload": typed},
        headers=factory.headers(county.clerk),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["household"]["id"] == county.home.id


def test_the_balance_page_reads_every_spelling(client: Any, spelled) -> None:
    _payload, typed = spelled
    response = client.post(
        "/balance",
        json={"payload": typed},
        headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.get_json()["found"] is True
    assert "覃德华" in response.get_json()["html"]
    # And without the page's script: a plain form post.
    page = client.post("/balance", data={"csrf_token": csrf_token(client), "payload": typed})
    assert page.status_code == 200 and "覃德华" in page.get_data(as_text=True)


def test_reading_does_not_make_an_altered_card_verify(client: Any, factory: Any, county) -> None:
    _card, payload = factory.card(county.home)
    altered = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    headers = factory.headers(county.clerk)
    for typed in (altered.lower(), full_width(altered), payload.lower() + "x"):
        response = client.post("/api/v1/cards/resolve", json={"payload": typed}, headers=headers)
        assert_problem(response, 422, "invalid_card")


def test_a_revoked_card_stays_refused_in_any_spelling(client: Any, factory: Any, county) -> None:
    _card, payload = factory.card(county.home)
    factory.card(county.home)  # a new card replaces it
    headers = factory.headers(county.clerk)
    for typed in (payload.lower(), full_width(payload)):
        response = client.post("/api/v1/cards/resolve", json={"payload": typed}, headers=headers)
        assert_problem(response, 410, "card_revoked")

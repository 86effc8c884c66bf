"""API.md's "Member cards" section over HTTP: issue, list, revoke, reprint, QR image, resolve."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from core.db import db
from member_cards import sheets
from member_cards.models import MemberCard
from tests.member_cards.conftest import County, assert_problem


def issue(client: Any, factory: Any, who: Any, household_id: int) -> Any:
    return client.post(f"/api/v1/households/{household_id}/cards", headers=factory.headers(who))


def test_issue_answers_card_id_serial_and_payload(client: Any, factory: Any, county: County):
    response = issue(client, factory, county.cadre, county.home.id)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == {"card_id", "serial", "payload"}
    assert body["serial"] == f"{county.home.id:06d}-01"
    resolved = client.post(
        "/api/v1/cards/resolve",
        json={"payload": body["payload"]},
        headers=factory.headers(county.clerk),
    )
    assert resolved.status_code == 200
    assert resolved.get_json()["card"] == {
        "card_id": body["card_id"],
        "serial": body["serial"],
        "status": "active",
    }


def test_issuing_revokes_the_earlier_active_card(client: Any, factory: Any, county: County):
    first = issue(client, factory, county.admin, county.home.id).get_json()
    second = issue(client, factory, county.admin, county.home.id).get_json()
    assert second["serial"].endswith("-02")
    headers = factory.headers(county.clerk)
    old = client.post("/api/v1/cards/resolve", json={"payload": first["payload"]}, headers=headers)
    assert_problem(old, 410, "card_revoked")
    new = client.post("/api/v1/cards/resolve", json={"payload": second["payload"]}, headers=headers)
    assert new.status_code == 200


def test_resolve_answers_the_household(client: Any, factory: Any, county: County) -> None:
    _card, payload = factory.card(county.home)
    response = client.post(
        "/api/v1/cards/resolve", json={"payload": payload}, headers=factory.headers(county.manager)
    )
    assert response.status_code == 200
    household = response.get_json()["household"]
    assert household["id"] == county.home.id
    assert household["head_name"] == "覃德华"
    assert household["members"] == [{"name": "覃德华"}, {"name": "向秀英"}]
    assert household["village_code"] == "ZJB"
    assert household["balance"] == 120


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "6901234567892",
        "\x00\x01binary\xff",
        "\ud800",
        "IC1.1.1.1.00000000000000000000",
        "x" * 5000,
    ],
)
def test_resolve_refuses_junk_as_invalid_card(
    client: Any, factory: Any, county: County, junk: str
) -> None:
    # Sent as ASCII JSON, so even a lone surrogate travels as the escape a client would send.
    response = client.post(
        "/api/v1/cards/resolve",
        data=json.dumps({"payload": junk}),
        content_type="application/json",
        headers=factory.headers(county.clerk),
    )
    assert_problem(response, 422, "invalid_card")


def test_resolve_refuses_every_altered_character(client: Any, factory: Any, county: County) -> None:
    _card, payload = factory.card(county.home)
    headers = factory.headers(county.clerk)
    # Every position, each changed to a digit, a letter and a QR symbol not already there.
    for position, original in enumerate(payload):
        for replacement in {"7", "Q", "."} - {original}:
            altered = payload[:position] + replacement + payload[position + 1 :]
            response = client.post(
                "/api/v1/cards/resolve", json={"payload": altered}, headers=headers
            )
            assert_problem(response, 422, "invalid_card")
    for end in (0, 5, len(payload) // 2, len(payload) - 1):
        response = client.post(
            "/api/v1/cards/resolve", json={"payload": payload[:end]}, headers=headers
        )
        assert_problem(response, 422, "invalid_card")


def test_resolve_unknown_and_revoked(app: Any, client: Any, factory: Any, county: County) -> None:
    from member_cards import signing

    card, payload = factory.card(county.home)
    headers = factory.headers(county.clerk)
    keys = signing.keyring_from_config(app.config)
    genuine_unknown = signing.encode(keys, county.away.id, 1)
    response = client.post(
        "/api/v1/cards/resolve", json={"payload": genuine_unknown}, headers=headers
    )
    assert_problem(response, 404, "unknown_card")

    revoked = client.post(
        f"/api/v1/cards/{card.id}/revoke",
        json={"reason": "卡丢失"},
        headers=factory.headers(county.cadre),
    )
    assert revoked.status_code == 200
    body = revoked.get_json()
    assert body["status"] == "revoked" and body["revoke_reason"] == "卡丢失"
    assert body["events"][-1]["kind"] == "revoked"
    assert body["events"][-1]["by"] == "cadre-zjb"
    response = client.post("/api/v1/cards/resolve", json={"payload": payload}, headers=headers)
    assert_problem(response, 410, "card_revoked")


@pytest.mark.parametrize("body", [None, {}, {"payload": 12345}, {"payload": None}, []])
def test_resolve_without_a_text_payload_is_a_validation_error(
    client: Any, factory: Any, county: County, body: Any
) -> None:
    response = client.post(
        "/api/v1/cards/resolve", json=body, headers=factory.headers(county.clerk)
    )
    assert_problem(response, 422, "validation_error")


def test_roles(client: Any, factory: Any, county: County) -> None:
    card, payload = factory.card(county.home)
    for who in (county.other_cadre, county.manager, county.clerk):
        assert_problem(issue(client, factory, who, county.home.id), 403, "forbidden")
        headers = factory.headers(who)
        revoke = client.post(
            f"/api/v1/cards/{card.id}/revoke", json={"reason": "x"}, headers=headers
        )
        assert_problem(revoke, 403, "forbidden")
        assert_problem(
            client.get(f"/api/v1/cards/{card.id}/qr.png", headers=headers), 403, "forbidden"
        )
        listed = client.get(f"/api/v1/households/{county.home.id}/cards", headers=headers)
        assert_problem(listed, 403, "forbidden")
    for who in (county.admin, county.cadre, county.other_cadre, county.manager, county.clerk):
        response = client.post(
            "/api/v1/cards/resolve", json={"payload": payload}, headers=factory.headers(who)
        )
        assert response.status_code == 200
    assert_problem(
        client.post("/api/v1/cards/resolve", json={"payload": payload}), 401, "unauthenticated"
    )
    assert_problem(
        client.post(f"/api/v1/households/{county.home.id}/cards"), 401, "unauthenticated"
    )


def test_revoke_needs_a_reason_and_a_live_card(client: Any, factory: Any, county: County) -> None:
    card, _payload = factory.card(county.home)
    headers = factory.headers(county.admin)
    for body in (None, {}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "x", "extra": 1}):
        response = client.post(f"/api/v1/cards/{card.id}/revoke", json=body, headers=headers)
        assert_problem(response, 422, "validation_error")
    assert (
        client.post(
            f"/api/v1/cards/{card.id}/revoke", json={"reason": "被盗"}, headers=headers
        ).status_code
        == 200
    )
    again = client.post(f"/api/v1/cards/{card.id}/revoke", json={"reason": "x"}, headers=headers)
    assert_problem(again, 410, "card_revoked")
    missing = client.post("/api/v1/cards/999999/revoke", json={"reason": "x"}, headers=headers)
    assert_problem(missing, 404, "not_found")
    huge = client.post("/api/v1/cards/99999999999999/revoke", json={"reason": "x"}, headers=headers)
    assert_problem(huge, 404, "not_found")


def test_issue_for_a_missing_household_is_not_found(
    client: Any, factory: Any, county: County
) -> None:
    assert_problem(issue(client, factory, county.admin, 999_999), 404, "not_found")


def test_list_shows_every_card_with_status(client: Any, factory: Any, county: County) -> None:
    factory.card(county.home)
    factory.card(county.home)
    response = client.get(
        f"/api/v1/households/{county.home.id}/cards", headers=factory.headers(county.cadre)
    )
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert [(c["serial"][-2:], c["status"]) for c in cards] == [
        ("02", "active"),
        ("01", "replaced"),
    ]
    assert cards[1]["replaced_by"] == cards[0]["serial"]
    assert [e["kind"] for e in cards[1]["events"]] == ["issued", "replaced"]
    assert cards[0]["issued_at"].endswith("+08:00")


def test_reprint_gives_the_same_card(client: Any, factory: Any, county: County) -> None:
    card, payload = factory.card(county.home)
    response = client.post(
        f"/api/v1/cards/{card.id}/reprint", headers=factory.headers(county.cadre)
    )
    assert response.status_code == 200
    assert response.get_json() == {"card_id": card.id, "serial": card.serial, "payload": payload}


def test_qr_png_decodes_to_the_exact_payload(client: Any, factory: Any, county: County) -> None:
    card, payload = factory.card(county.home)
    response = client.get(f"/api/v1/cards/{card.id}/qr.png", headers=factory.headers(county.cadre))
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(response.data))
    [found] = zxingcpp.read_barcodes(image)
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    assert found.text == payload
    assert found.ec_level in ("Q", "H")


def test_qr_code_has_a_four_module_quiet_zone_and_alphanumeric_mode(
    factory: Any, county: County
) -> None:
    _card, payload = factory.card(county.home)
    code = sheets.qr_code(payload)
    assert code.border == 4
    assert code.version <= 3
    image = Image.open(io.BytesIO(sheets.qr_png(payload))).convert("L")
    modules = code.modules_count + 2 * 4
    assert image.size[0] == modules * sheets.PNG_MODULE_PX
    quiet = 4 * sheets.PNG_MODULE_PX
    width = image.size[0]
    # The four-module frame is white all round.
    for box in (
        (0, 0, width, quiet),
        (0, 0, quiet, width),
        (width - quiet, 0, width, width),
        (0, width - quiet, width, width),
    ):
        assert image.crop(box).getextrema() == (255, 255)
    assert image.crop((quiet, quiet, quiet + 10, quiet + 10)).getextrema() == (0, 0)


def test_no_qr_for_a_revoked_card(client: Any, factory: Any, county: County) -> None:
    card, _payload = factory.card(county.home)
    factory.card(county.home)
    response = client.get(f"/api/v1/cards/{card.id}/qr.png", headers=factory.headers(county.admin))
    assert_problem(response, 410, "card_revoked")


def test_openapi_documents_the_card_endpoints(client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/households/{household_id}/cards",
        "/api/v1/cards/{card_id}/revoke",
        "/api/v1/cards/{card_id}/qr.png",
        "/api/v1/cards/resolve",
    ):
        assert path in paths, sorted(paths)


def test_concurrent_issues_leave_one_active_card(app: Any, factory: Any, county: County) -> None:
    headers = factory.headers(county.admin)
    household_id = county.home.id
    db.session.commit()
    results: list[int] = []

    def worker() -> None:
        with app.test_client() as client:
            results.append(
                client.post(f"/api/v1/households/{household_id}/cards", headers=headers).status_code
            )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 4
    db.session.rollback()
    numbers = db.session.scalars(
        select(MemberCard.number).where(MemberCard.household_id == household_id)
    ).all()
    assert sorted(numbers) == [1, 2, 3, 4]
    active = db.session.scalar(
        select(func.count()).where(
            MemberCard.household_id == household_id, MemberCard.status == "active"
        )
    )
    assert active == 1

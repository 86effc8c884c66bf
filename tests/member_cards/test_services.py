"""Card lifecycle through the services: issue, replace, revoke, reprint, resolve, rotation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.db import db, utcnow
from core.errors import CardRevoked, Forbidden, InvalidCard, NotFound, UnknownCard
from core.errors import ValidationFailed as Invalid
from ledger import services as ledger
from member_cards import services, signing
from member_cards.models import CardStatus, MemberCard, MemberCardEvent
from tests.member_cards.conftest import County


def keyring(app: Any) -> signing.Keyring:
    return signing.keyring_from_config(app.config)


def test_issue_gives_an_active_card_with_a_readable_serial(county: County, factory: Any) -> None:
    card, payload = factory.card(county.home, actor=county.cadre)
    assert card.status == CardStatus.ACTIVE
    assert card.number == 1
    assert card.serial == f"{county.home.id:06d}-01"
    assert payload.startswith(f"IC1.1.{county.home.id}.1.")
    [event] = card.events
    assert (event.kind, event.actor_id) == ("issued", county.cadre.id)
    assert event.at is not None


def test_issuing_again_replaces_the_earlier_card(app: Any, county: County, factory: Any) -> None:
    first, first_payload = factory.card(county.home)
    second, second_payload = factory.card(county.home, actor=county.cadre)
    db.session.refresh(first)
    assert first.status == CardStatus.REPLACED
    assert first.replaced_by_id == second.id
    assert first.ended_at is not None
    assert second.number == 2 and second.serial.endswith("-02")
    assert [e.kind for e in first.events] == ["issued", "replaced"]
    assert first.events[-1].actor_id == county.cadre.id
    with pytest.raises(CardRevoked):
        services.resolve_card(db.session, payload=first_payload, keyring=keyring(app))
    assert services.resolve_card(db.session, payload=second_payload, keyring=keyring(app)) is second


def test_a_household_never_has_two_active_cards(county: County, factory: Any) -> None:
    _card, _payload = factory.card(county.home)
    db.session.add(MemberCard(household_id=county.home.id, number=2, serial="dup", status="active"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_revoke_needs_a_reason_and_records_it(app: Any, county: County, factory: Any) -> None:
    card, payload = factory.card(county.home)
    with pytest.raises(Invalid):
        services.revoke_card(
            db.session, actor=county.cadre, now=utcnow(), card_id=card.id, reason="  "
        )
    services.revoke_card(
        db.session, actor=county.cadre, now=utcnow(), card_id=card.id, reason="丢失"
    )
    db.session.commit()
    assert card.status == CardStatus.REVOKED
    assert card.revoke_reason == "丢失"
    event = card.events[-1]
    assert (event.kind, event.reason, event.actor_id) == ("revoked", "丢失", county.cadre.id)
    with pytest.raises(CardRevoked):
        services.resolve_card(db.session, payload=payload, keyring=keyring(app))
    with pytest.raises(CardRevoked):
        services.revoke_card(
            db.session, actor=county.admin, now=utcnow(), card_id=card.id, reason="again"
        )
    with pytest.raises(CardRevoked):
        services.reprint_card(db.session, actor=county.admin, now=utcnow(), card_id=card.id)


def test_reprint_keeps_the_serial_and_is_recorded(app: Any, county: County, factory: Any) -> None:
    card, payload = factory.card(county.home)
    again = services.reprint_card(db.session, actor=county.cadre, now=utcnow(), card_id=card.id)
    db.session.commit()
    assert again is card and card.status == CardStatus.ACTIVE
    assert services.card_payload(card, keyring(app)) == payload
    assert [(e.kind, e.actor_id) for e in card.events][-1] == ("reprinted", county.cadre.id)


@pytest.mark.parametrize("who", ["other_cadre", "manager", "clerk"])
def test_only_admin_and_the_villages_cadre_change_cards(
    county: County, factory: Any, who: str
) -> None:
    actor = getattr(county, who)
    card, _payload = factory.card(county.home)
    with pytest.raises(Forbidden):
        services.issue_card(db.session, actor=actor, now=utcnow(), household_id=county.home.id)
    with pytest.raises(Forbidden):
        services.revoke_card(db.session, actor=actor, now=utcnow(), card_id=card.id, reason="lost")
    with pytest.raises(Forbidden):
        services.reprint_card(db.session, actor=actor, now=utcnow(), card_id=card.id)
    with pytest.raises(Forbidden):
        services.list_household_cards(db.session, actor=actor, household_id=county.home.id)
    with pytest.raises(Forbidden):
        services.printable_card(db.session, actor=actor, card_id=card.id)


def test_unknown_household_and_card_are_not_found(county: County) -> None:
    with pytest.raises(NotFound):
        services.issue_card(db.session, actor=county.admin, now=utcnow(), household_id=999_999)
    for card_id in (0, 999_999, 2**40):
        with pytest.raises(NotFound):
            services.get_card(db.session, card_id)


def test_resolve_states(app: Any, county: County, factory: Any) -> None:
    card, payload = factory.card(county.home)
    assert services.resolve_card(db.session, payload=payload, keyring=keyring(app)) is card
    never_issued = signing.encode(keyring(app), county.home.id, 7)
    with pytest.raises(UnknownCard):
        services.resolve_card(db.session, payload=never_issued, keyring=keyring(app))
    with pytest.raises(InvalidCard):
        services.resolve_card(db.session, payload=payload[:-1] + "X", keyring=keyring(app))
    with pytest.raises(InvalidCard):
        services.resolve_card(db.session, payload="6901234567892", keyring=keyring(app))


def test_key_rotation_without_reissuing(app: Any, county: County, factory: Any) -> None:
    card, old_payload = factory.card(county.home)
    app.config.update(CARD_SIGNING_KEYS={"2": "the-new-key"}, CARD_SIGNING_KEY_ID="2")
    new_payload = services.card_payload(card, keyring(app))
    assert new_payload.startswith("IC1.2.") and new_payload != old_payload
    for payload in (old_payload, new_payload):
        assert services.resolve_card(db.session, payload=payload, keyring=keyring(app)) is card
    app.config["CARD_RETIRED_KEY_IDS"] = ["1"]
    with pytest.raises(InvalidCard):
        services.resolve_card(db.session, payload=old_payload, keyring=keyring(app))
    assert services.resolve_card(db.session, payload=new_payload, keyring=keyring(app)) is card


def test_list_is_newest_first_with_history(county: County, factory: Any) -> None:
    factory.card(county.home)
    factory.card(county.home)
    cards = services.list_household_cards(
        db.session, actor=county.cadre, household_id=county.home.id
    )
    assert [c.number for c in cards] == [2, 1]
    assert [c.status for c in cards] == ["active", "replaced"]


def test_issue_missing_cards_for_a_village(county: County, factory: Any) -> None:
    second = factory.household(county.zjb, head="向秀英", members=("向秀英",))
    third = factory.household(county.zjb, head="李桂兰", members=("李桂兰",))
    factory.card(county.home)
    issued = services.issue_missing_cards(
        db.session, actor=county.cadre, now=utcnow(), village_code="ZJB"
    )
    db.session.commit()
    assert sorted(c.household_id for c in issued) == sorted([second.id, third.id])
    assert (
        services.issue_missing_cards(
            db.session, actor=county.cadre, now=utcnow(), village_code="ZJB"
        )
        == []
    )
    with pytest.raises(Forbidden):
        services.issue_missing_cards(
            db.session, actor=county.other_cadre, now=utcnow(), village_code="ZJB"
        )
    cards = services.village_sheet_cards(db.session, actor=county.cadre, village_code="ZJB")
    assert [c.household_id for c in cards] == sorted([county.home.id, second.id, third.id])
    with pytest.raises(NotFound):
        services.village_sheet_cards(db.session, actor=county.admin, village_code="GJY")


def test_balance_for_card_shows_spendable_score_and_ten_entries(
    app: Any, county: County, factory: Any
) -> None:
    for n in range(12):
        ledger.post_award(
            db.session,
            actor=county.admin,
            now=utcnow(),
            household_id=county.away.id,
            idempotency_key=f"balance-{n}",
            points=-3 if n == 5 else 10,
            reason=f"第{n}次",
        )
    db.session.commit()
    _card, payload = factory.card(county.away)
    view = services.balance_for_card(db.session, payload=payload, keyring=keyring(app))
    assert view.head_name == "田建国" and view.village_name == "高家堰村"
    assert view.balance == 300 + 11 * 10 - 3
    assert view.reserve == 100 and view.spendable == view.balance - 100
    assert view.integrity_score == 300 + 110 - (3 + 0)
    assert len(view.entries) == 10
    assert view.entries[0].reason == "第11次"


def test_every_change_is_recorded_once(county: County, factory: Any) -> None:
    card, _payload = factory.card(county.home)
    factory.card(county.home)
    services.reprint_card(db.session, actor=county.admin, now=utcnow(), card_id=card.id + 1)
    services.revoke_card(
        db.session, actor=county.admin, now=utcnow(), card_id=card.id + 1, reason="被盗"
    )
    db.session.commit()
    kinds = db.session.scalars(select(MemberCardEvent.kind).order_by(MemberCardEvent.id)).all()
    assert kinds == ["issued", "issued", "replaced", "reprinted", "revoked"]
    assert all(
        e.actor_id is not None and e.at is not None
        for e in db.session.scalars(select(MemberCardEvent))
    )

"""Member card operations. Each takes the session, the acting user and the time; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import (
    CardRevoked,
    Conflict,
    InvalidCard,
    NotFound,
    UnknownCard,
    ValidationFailed,
)
from core.ids import is_id
from core.scanned import normalize_code
from ledger import services as ledger
from ledger.models import Household, Village
from ledger.services import StatementEntry
from member_cards import sheets, signing
from member_cards.labels import card_status_word
from member_cards.models import CardEventKind, CardStatus, MemberCard, MemberCardEvent

MAX_REASON_CHARS = 500
# What the public balance page shows of the family integrity file.
BALANCE_PAGE_ENTRIES = 10


def _record(
    session: Session,
    card: MemberCard,
    kind: CardEventKind,
    *,
    actor: User | None,
    now: datetime,
    reason: str | None = None,
) -> None:
    session.add(
        MemberCardEvent(
            card=card, kind=kind, reason=reason, actor_id=actor.id if actor else None, at=now
        )
    )


def get_card(session: Session, card_id: int) -> MemberCard:
    card = session.get(MemberCard, card_id) if is_id(card_id) else None
    if card is None:
        raise NotFound(_l("no card %(card_id)s", card_id=card_id))
    return card


def _managed_card(session: Session, actor: User, card_id: int, *, lock: bool = False) -> MemberCard:
    card = get_card(session, card_id)
    actor.require_village(card.household.village.code)
    if lock:
        _lock_household(session, card.household_id)
        # What was read before the lock may be stale; the lock's holder may have changed it.
        session.refresh(card)
    return card


def _require_active(card: MemberCard) -> None:
    if card.status != CardStatus.ACTIVE:
        raise CardRevoked(
            _l(
                "card %(serial)s is %(status)s",
                serial=card.serial,
                status=card_status_word(card.status),
            )
        )


def active_card(session: Session, household_id: int) -> MemberCard | None:
    return session.scalar(
        select(MemberCard)
        .where(MemberCard.household_id == household_id, MemberCard.status == CardStatus.ACTIVE)
        .execution_options(populate_existing=True)
    )


def _lock_household(session: Session, household_id: int) -> None:
    """Queue every card change of one household behind the one before it.

    PostgreSQL: a row lock on the household, so a second issue or revoke waits and then
    sees the first one's card, instead of both replacing the same card. NO KEY UPDATE
    leaves foreign-key checks (a transfer or a card referring to the household) unblocked.
    SQLite's IMMEDIATE transactions already run writers one at a time.
    """
    session.execute(
        select(Household.id).where(Household.id == household_id).with_for_update(key_share=True)
    )


def issue_card(session: Session, *, actor: User, now: datetime, household_id: int) -> MemberCard:
    """A new card for the household; its earlier active card stops working at once."""
    household = ledger.get_household(session, household_id)
    actor.require_village(household.village.code)
    return _issue(session, actor=actor, now=now, household=household)


def _issue(session: Session, *, actor: User, now: datetime, household: Household) -> MemberCard:
    ledger.require_active(household.id, household.status)
    _lock_household(session, household.id)
    previous = active_card(session, household.id)
    if previous is not None:
        # Retire the old card before the new one exists: one active card per household
        # is a unique index, and it holds at every flush.
        previous.status = CardStatus.REPLACED
        previous.ended_at = now
        session.flush()
    # Two issues racing for one household pick the same number; the unique constraint
    # refuses the loser, and the edge's retry gives it the next number.
    number = (
        session.scalar(
            select(func.max(MemberCard.number)).where(MemberCard.household_id == household.id)
        )
        or 0
    ) + 1
    if number > signing.MAX_CARD_NUMBER:
        raise Conflict(_l("this household has had too many cards"))
    card = MemberCard(
        household=household,
        number=number,
        serial=signing.card_serial(household.id, number),
        status=CardStatus.ACTIVE,
        issued_at=now,
    )
    session.add(card)
    session.flush()
    _record(session, card, CardEventKind.ISSUED, actor=actor, now=now)
    if previous is not None:
        previous.replaced_by_id = card.id
        _record(
            session,
            previous,
            CardEventKind.REPLACED,
            actor=actor,
            now=now,
            reason=str(_l("replaced by card %(serial)s", serial=card.serial)),
        )
    session.flush()
    return card


def issue_missing_cards(
    session: Session, *, actor: User, now: datetime, village_code: str
) -> list[MemberCard]:
    """A card for every active household of the village that has none working."""
    village = ledger.get_village(session, village_code)
    actor.require_village(village.code)
    with_card = select(MemberCard.household_id).where(MemberCard.status == CardStatus.ACTIVE)
    households = session.scalars(
        select(Household)
        .where(
            Household.village_id == village.id,
            Household.status == "active",
            Household.id.not_in(with_card),
        )
        .order_by(Household.id)
    ).all()
    return [_issue(session, actor=actor, now=now, household=h) for h in households]


def revoke_card(
    session: Session, *, actor: User, now: datetime, card_id: int, reason: str
) -> MemberCard:
    """A lost or stolen card stops working; the household needs a new one."""
    card = _managed_card(session, actor, card_id, lock=True)
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise ValidationFailed(
            errors={"reason": [_l("say why, in 1 to %(most)s characters", most=MAX_REASON_CHARS)]}
        )
    _require_active(card)
    card.status = CardStatus.REVOKED
    card.ended_at = now
    card.revoke_reason = reason
    _record(session, card, CardEventKind.REVOKED, actor=actor, now=now, reason=reason)
    session.flush()
    return card


def reprint_card(session: Session, *, actor: User, now: datetime, card_id: int) -> MemberCard:
    """Another print of a worn card: same serial, and the earlier print keeps working."""
    card = printable_card(session, actor=actor, card_id=card_id)
    _record(session, card, CardEventKind.REPRINTED, actor=actor, now=now)
    session.flush()
    return card


def printable_card(session: Session, *, actor: User, card_id: int) -> MemberCard:
    """A card whose QR code the actor may see: in their village, and still working."""
    card = _managed_card(session, actor, card_id)
    _require_active(card)
    return card


def list_household_cards(
    session: Session, *, actor: User, household_id: int
) -> Sequence[MemberCard]:
    """Every card the household has had, newest first, each with its history."""
    household = ledger.get_household(session, household_id)
    actor.require_village(household.village.code)
    return session.scalars(
        select(MemberCard)
        .where(MemberCard.household_id == household_id)
        .order_by(MemberCard.number.desc())
    ).all()


def household_sheet_cards(session: Session, *, actor: User, household_id: int) -> list[MemberCard]:
    household = ledger.get_household(session, household_id)
    actor.require_village(household.village.code)
    card = active_card(session, household_id)
    if card is None:
        raise NotFound(
            _l(
                "household %(household_id)s has no working card; issue one first",
                household_id=household_id,
            )
        )
    return [card]


def village_sheet_cards(session: Session, *, actor: User, village_code: str) -> list[MemberCard]:
    village = ledger.get_village(session, village_code)
    actor.require_village(village.code)
    return active_cards_of_village(session, village)


def active_cards_of_village(session: Session, village: Village) -> list[MemberCard]:
    """The working cards of a village in household order, as they go on a card sheet."""
    cards = session.scalars(
        select(MemberCard)
        .join(Household, MemberCard.household_id == Household.id)
        .where(Household.village_id == village.id, MemberCard.status == CardStatus.ACTIVE)
        .order_by(Household.id)
    ).all()
    if not cards:
        raise NotFound(
            _l("village %(code)s has no working cards; issue cards first", code=village.code)
        )
    return list(cards)


def village_sheet_heads(
    session: Session, *, actor: User, village_code: str
) -> list[tuple[int, str]]:
    """(household id, head's name) of each card on the village's sheet, in sheet order.

    One query, for the household page's warning about names that print with a code.
    """
    village = ledger.get_village(session, village_code)
    actor.require_village(village.code)
    rows = session.execute(
        select(Household.id, Household.head_name)
        .join(MemberCard, MemberCard.household_id == Household.id)
        .where(Household.village_id == village.id, MemberCard.status == CardStatus.ACTIVE)
        .order_by(Household.id)
    ).all()
    return [(row.id, row.head_name) for row in rows]


def card_payload(card: MemberCard, keyring: signing.Keyring) -> str:
    """Exactly the text in the card's QR code, signed with the current key."""
    return signing.encode(keyring, card.household_id, card.number)


def card_faces(cards: Sequence[MemberCard], keyring: signing.Keyring) -> list[sheets.CardFace]:
    """What each card of a sheet shows, in the order given."""
    return [
        sheets.CardFace(
            payload=card_payload(card, keyring),
            head_name=card.household.head_name,
            village_name=card.household.village.name,
            serial=card.serial,
        )
        for card in cards
    ]


def resolve_card(session: Session, *, payload: object, keyring: signing.Keyring) -> MemberCard:
    """The working card behind a scanned payload, or why there is none.

    The signature is checked before the database is asked anything, so junk and
    forgeries cost no query and reveal nothing about which households exist.

    Every reader of a card comes through here (the counter, the balance page, the API),
    so this is where a scan is read as API.md says: case and full-width characters do
    not matter. The codec itself keeps to the one canonical spelling it signs.
    """
    card = card_on_record(session, payload=payload, keyring=keyring)
    _require_active(card)
    return card


def card_on_record(session: Session, *, payload: object, keyring: signing.Keyring) -> MemberCard:
    """The card behind a scanned payload, working or not (InvalidCard, UnknownCard).

    For looking back: a revoked card still says whose sales it paid for.
    """
    if isinstance(payload, str):
        payload = normalize_code(payload)
    try:
        claims = signing.decode(keyring, payload)
    except signing.PayloadError as exc:
        raise InvalidCard(_l("the code does not verify as a member card")) from exc
    card = session.scalar(
        select(MemberCard).where(
            MemberCard.household_id == claims.household_id,
            MemberCard.number == claims.card_number,
        )
    )
    if card is None:
        raise UnknownCard(_l("no such card is on record"))
    return card


@dataclass(frozen=True)
class BalanceView:
    """What the public balance page shows for a scanned card, and nothing more."""

    head_name: str
    village_name: str
    serial: str
    balance: int
    # A village may keep points in reserve that redemptions must leave untouched.
    reserve: int
    spendable: int
    integrity_score: int
    entries: list[StatementEntry]


def integrity_score(household: Household) -> int:
    # As the ledger API publishes it: earned minus penalties, redemptions aside.
    return household.account.earned_total - household.account.penalty_total


def balance_for_card(session: Session, *, payload: object, keyring: signing.Keyring) -> BalanceView:
    card = resolve_card(session, payload=payload, keyring=keyring)
    household = card.household
    account = household.account
    reserve = household.village.redemption_floor
    return BalanceView(
        head_name=household.head_name,
        village_name=household.village.name,
        serial=card.serial,
        balance=account.balance,
        reserve=reserve,
        spendable=max(account.balance - reserve, 0),
        integrity_score=integrity_score(household),
        entries=ledger.household_statement(session, household.id, limit=BALANCE_PAGE_ENTRIES),
    )

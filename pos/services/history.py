"""Sales already made: one sale as its shop may see it, a shop's sales found by what was typed."""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import InvalidCard, NotFound, UnknownCard
from core.ids import is_id
from core.scanned import normalize_code, normalize_scanned, parse_scanned_int
from ledger.models import Household, HouseholdMember
from member_cards import services as cards
from member_cards.labels import card_status_word
from member_cards.signing import FORMAT as CARD_FORMAT
from member_cards.signing import Keyring
from pos.models import Sale

# Longer than any receipt number (64) or card payload (80); past it nothing can match.
MAX_SEARCH_CHARS = 100


def get_sale(session: Session, *, actor: User, sale_id: int) -> Sale:
    sale = session.get(Sale, sale_id) if is_id(sale_id) else None
    if sale is None or not actor.may_sell_at(sale.shop_code):
        # Another shop's sale is as good as absent: ids must not reveal other shops' trade.
        raise NotFound(_l("no sale %(sale_id)s", sale_id=sale_id))
    return sale


def find_sales(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    receipt_no: str | None = None,
    household_id: int | None = None,
    day: date | None = None,
    name: str | None = None,
    limit: int = 100,
) -> Sequence[Sale]:
    """A shop's sales by receipt number, household, name or business day, newest first.

    By the time of sale, not by id: an offline sale reaches the county late, with the time
    it was made.
    """
    actor.require_shop_staff(shop_code)
    stmt = select(Sale).where(Sale.shop_code == shop_code)
    if receipt_no:
        stmt = stmt.where(Sale.receipt_no == _receipt_spelling(shop_code, receipt_no))
    if household_id is not None:
        stmt = stmt.where(Sale.household_id == household_id)
    if name:
        stmt = stmt.where(Sale.household_id.in_(_households_named(name)))
    if day is not None:
        stmt = stmt.where(Sale.business_day == day)
    return session.scalars(stmt.order_by(Sale.created_at.desc(), Sale.id.desc()).limit(limit)).all()


def _households_named(name: str) -> Select[tuple[int]]:
    """Households whose head's or a member's name holds the text: part of a name will do.

    The text is matched as typed and in its NFKC form: a name may have been stored with a
    compatibility ideograph that NFKC would replace.
    """
    spellings = {name, unicodedata.normalize("NFKC", name)}
    clauses: list[ColumnElement[bool]] = []
    for spelling in spellings:
        members = select(HouseholdMember.household_id).where(
            HouseholdMember.name.icontains(spelling, autoescape=True)
        )
        clauses += [
            Household.head_name.icontains(spelling, autoescape=True),
            Household.id.in_(members),
        ]
    return select(Household.id).where(or_(*clauses))


class SearchKind(enum.StrEnum):
    """What the one search box of the sales page took the typed text for."""

    DAY = "day"
    RECEIPT = "receipt"
    HOUSEHOLD = "household"
    CARD = "card"
    NAME = "name"


@dataclass(frozen=True)
class SalesSearch:
    """The sales found for what was typed or scanned, and how the text was read."""

    rows: Sequence[Sale]
    kind: SearchKind
    text: str
    household_id: int | None = None
    card_serial: str | None = None
    card_status: str | None = None
    # Why a scanned card found nothing (not a card of ours, not on record).
    note: str | None = None


def search_sales(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    text: str,
    keyring: Keyring,
    day: date | None = None,
    limit: int = 100,
) -> SalesSearch:
    """A shop's sales for whatever was typed or scanned into one box, never a refusal.

    The text is a card's payload (the household's sales, its card working or not), a
    receipt number, a household's number, or else part of a head's or member's name.
    Read as API.md says: NFKC, trimmed, case ignored for codes. Empty: the day's sales.
    """
    actor.require_shop_staff(shop_code)
    typed = normalize_scanned(text)[:MAX_SEARCH_CHARS]
    scope = {"actor": actor, "shop_code": shop_code, "day": day, "limit": limit}
    if not typed:
        return SalesSearch(find_sales(session, **scope), SearchKind.DAY, typed)
    if any(unicodedata.category(char) == "Cc" for char in typed):
        # Nothing typed or scanned on purpose holds a control character inside (and
        # PostgreSQL text cannot hold NUL): nothing to find.
        return SalesSearch([], SearchKind.NAME, typed)
    if normalize_code(typed).startswith(f"{CARD_FORMAT}."):
        return _card_sales(session, typed, keyring, scope)
    rows = find_sales(session, receipt_no=typed, **scope)
    if rows:
        return SalesSearch(rows, SearchKind.RECEIPT, typed)
    # As typed, not normalized: parse_scanned_int refuses "²" that NFKC would make a 2.
    number = parse_scanned_int(text[: MAX_SEARCH_CHARS * 2], max_digits=10)
    if number is not None:
        if not is_id(number):
            return SalesSearch([], SearchKind.HOUSEHOLD, typed)
        rows = find_sales(session, household_id=number, **scope)
        return SalesSearch(rows, SearchKind.HOUSEHOLD, typed, household_id=number)
    return SalesSearch(find_sales(session, name=typed, **scope), SearchKind.NAME, typed)


def _card_sales(
    session: Session, typed: str, keyring: Keyring, scope: dict[str, Any]
) -> SalesSearch:
    try:
        card = cards.card_on_record(session, payload=typed, keyring=keyring)
    except (InvalidCard, UnknownCard) as exc:
        return SalesSearch([], SearchKind.CARD, typed, note=str(exc.title))
    return SalesSearch(
        find_sales(session, household_id=card.household_id, **scope),
        SearchKind.CARD,
        typed,
        household_id=card.household_id,
        card_serial=card.serial,
        card_status=card_status_word(card.status),
    )


def _receipt_spelling(shop_code: str, receipt_no: str) -> str:
    """A typed receipt number as it is stored, its case being noise (API.md).

    Numbers read shop code, day and sequence (receipt_number); only the shop's code has
    letters, and it is stored as the shop spells it, so an exact, indexed match is kept.
    """
    typed = normalize_code(receipt_no)
    prefix = f"{shop_code}-"
    if typed.startswith(prefix.upper()):
        return prefix + typed[len(prefix) :]
    return typed


def household_heads(session: Session, household_ids: Sequence[int]) -> dict[int, str]:
    """Head of household by id, for lists of sales: one query, not one per row."""
    ids = set(household_ids)
    if not ids:
        return {}
    rows = session.execute(select(Household.id, Household.head_name).where(Household.id.in_(ids)))
    return dict(rows.all())

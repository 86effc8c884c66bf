"""The words people see for a card's state: one place, so no page can say it differently."""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l

from member_cards.models import CardStatus

_CARD_WORDS = {
    CardStatus.ACTIVE: _l("Valid"),
    CardStatus.REVOKED: _l("Revoked"),
    # A replaced card is as dead as a revoked one; the word says so first, then why.
    CardStatus.REPLACED: _l("Revoked (replaced by a newer card)"),
}
NEVER_ISSUED = _l("No card issued")


def card_status_word(status: str | None) -> str:
    """The word for a card's status; None stands for a household that never had a card."""
    if status is None:
        return str(NEVER_ISSUED)
    try:
        return str(_CARD_WORDS[CardStatus(status)])
    except ValueError:
        return status


def household_card_status(statuses: Iterable[str]) -> str | None:
    """The state of a household's card, from the statuses of every card it has had.

    A working card makes it active; cards that all stopped working make it revoked
    (however each one ended); no card at all is None, never issued.
    """
    seen = set(statuses)
    if not seen:
        return None
    return CardStatus.ACTIVE if CardStatus.ACTIVE in seen else CardStatus.REVOKED

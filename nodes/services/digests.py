"""Card digests: what a shop node checks a scanned card against offline, without the key."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from member_cards import signing
from member_cards.signing import Keyring


def payload_digest(payload: str) -> str:
    """sha256 hex of a card payload's text, as the node hashes what it scans (normalized)."""
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def accepted_rings(keyring: Keyring) -> list[Keyring]:
    """One keyring per accepted key, signing with it; the current key's first.

    A card printed before a key change still carries the old key's payload, and the
    counter still accepts it while that key is not retired: the node must too.
    """
    ids = [keyring.current_id, *sorted(k for k in keyring.secrets if k != keyring.current_id)]
    return [Keyring(current_id=key_id, secrets=keyring.secrets) for key_id in ids]


def card_digests(
    keyring: Keyring, household_id: int, number: int, *, rings: Sequence[Keyring] | None = None
) -> list[str]:
    """The card's digest under each accepted key (pass `rings` when digesting many cards)."""
    rings = accepted_rings(keyring) if rings is None else rings
    return [payload_digest(signing.encode(ring, household_id, number)) for ring in rings]

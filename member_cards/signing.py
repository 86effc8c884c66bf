"""The card payload codec: short, QR-alphanumeric, HMAC-signed text, verified without the DB.

A payload reads ``IC1.<key id>.<household id>.<card number>.<signature>``, for example
``IC1.1.123.2.7K3QX0M5RTB9W2ZC4N8A``:

- ``IC1`` names the format (integrity card, version 1), so the counter tells a card from
  a product barcode at a glance and a later format can live beside this one;
- the key id says which signing key made the signature, so a new key can be brought in
  and an old one retired without reissuing every card at once;
- household id and card number name the card; its printed serial is derived from them
  (see ``card_serial``), so the payload carries the serial in its shortest form;
- the signature is HMAC-SHA256 over the exact text before it, truncated to 100 bits and
  written in Crockford's base32 (20 characters).

Why HMAC and not Ed25519: the one party that signs is the one that verifies (this server,
with the key in the instance folder), so a public key buys nothing; an Ed25519 signature
is 64 bytes, over 100 characters in any QR-alphanumeric spelling, while the whole payload
must stay within 80. 100 bits leave forgery at 2^-100 a guess, and guesses are
rate-limited besides. Every character used (digits, A-Z and the dot) is in QR's
alphanumeric set, so the code stays small and scans from arm's length.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.ids import MAX_ID

FORMAT = "IC1"
MAX_PAYLOAD_CHARS = 80
SIGNATURE_CHARS = 20
# A whole number of base32 digits: no spare bits that could change without changing the
# decoded signature (which would let two spellings of one payload both verify).
SIGNATURE_BITS = SIGNATURE_CHARS * 5
# Crockford's alphabet without its lenient aliases (O for 0, I and L for 1): one spelling
# per signature, or a "changed" character could still verify.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# households.id is a 32-bit integer; a larger id is garbage, not a card.
MAX_HOUSEHOLD_ID = MAX_ID
MAX_CARD_NUMBER = 9999
DEFAULT_KEY_ID = "1"
KEY_ID = re.compile(r"[0-9A-Z]{1,4}")
# Canonical form only: no leading zeros, no signs, no spaces, so each card has one payload.
_PAYLOAD = re.compile(
    r"IC1\.(?P<kid>[0-9A-Z]{1,4})\.(?P<household>[1-9][0-9]{0,9})"
    r"\.(?P<number>[1-9][0-9]{0,3})\.(?P<sig>[" + ALPHABET + r"]{20})"
)


class PayloadError(ValueError):
    """The text is not a genuine card payload (the reason is for logs and tests only)."""


class KeyringError(ValueError):
    """The card signing keys in the configuration do not make a usable keyring."""


@dataclass(frozen=True)
class Keyring:
    """The key that signs new payloads, and every key whose payloads are still accepted."""

    current_id: str
    secrets: Mapping[str, bytes]

    def __post_init__(self) -> None:
        for key_id, secret in self.secrets.items():
            if not KEY_ID.fullmatch(key_id):
                raise KeyringError(f"card key id {key_id!r} must be 1 to 4 of 0-9 and A-Z")
            if not secret:
                raise KeyringError(f"card key {key_id} is empty")
        if self.current_id not in self.secrets:
            raise KeyringError(f"the current card key id {self.current_id!r} has no key")


@dataclass(frozen=True)
class CardClaims:
    key_id: str
    household_id: int
    card_number: int


def card_serial(household_id: int, card_number: int) -> str:
    """The serial printed on the card: the household, zero-padded, and its nth card."""
    return f"{household_id:06d}-{card_number:02d}"


def _signature(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode("ascii"), hashlib.sha256).digest()
    bits = int.from_bytes(digest, "big") >> (len(digest) * 8 - SIGNATURE_BITS)
    chars = []
    for _ in range(SIGNATURE_CHARS):
        chars.append(ALPHABET[bits & 31])
        bits >>= 5
    return "".join(reversed(chars))


def encode(keyring: Keyring, household_id: int, card_number: int) -> str:
    if not 0 < household_id <= MAX_HOUSEHOLD_ID or not 0 < card_number <= MAX_CARD_NUMBER:
        raise ValueError("household id or card number out of range")
    message = f"{FORMAT}.{keyring.current_id}.{household_id}.{card_number}"
    return f"{message}.{_signature(keyring.secrets[keyring.current_id], message)}"


def decode(keyring: Keyring, text: Any) -> CardClaims:
    """The claims of a genuine payload, or PayloadError. Needs no database."""
    if not isinstance(text, str):
        raise PayloadError("not text")
    # Scanners end with Enter (sometimes CR LF or a tab); that is not part of the card.
    text = text.strip()
    if len(text) > MAX_PAYLOAD_CHARS:
        raise PayloadError("too long")
    match = _PAYLOAD.fullmatch(text)
    if match is None:
        raise PayloadError("not a card payload")
    secret = keyring.secrets.get(match["kid"])
    if secret is None:
        raise PayloadError(f"unknown or retired key id {match['kid']}")
    message, _dot, signature = text.rpartition(".")
    if not hmac.compare_digest(_signature(secret, message), signature):
        raise PayloadError("bad signature")
    household_id = int(match["household"])
    if household_id > MAX_HOUSEHOLD_ID:
        raise PayloadError("household id out of range")
    return CardClaims(match["kid"], household_id, int(match["number"]))


def _pairs(value: Any) -> dict[str, str]:
    """A mapping from config.toml, or "id=secret,id=secret" from the environment."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    pairs = {}
    for item in str(value).split(","):
        key_id, sep, secret = item.strip().partition("=")
        if not sep:
            raise KeyringError("CARD_SIGNING_KEYS must be id=secret pairs separated by commas")
        pairs[key_id.strip()] = secret.strip()
    return pairs


def _ids(value: Any) -> set[str]:
    if not value:
        return set()
    items = value.split(",") if isinstance(value, str) else value
    return {str(item).strip() for item in items if str(item).strip()}


def keyring_from_config(config: Mapping[str, Any]) -> Keyring:
    """Build the keyring from settings.

    ``CARD_SIGNING_KEY`` (the instance file) is key ``1``; ``CARD_SIGNING_KEYS`` adds
    keys by id; ``CARD_SIGNING_KEY_ID`` picks the one that signs (default ``1``);
    ``CARD_RETIRED_KEY_IDS`` lists ids whose cards no longer verify.
    """
    secrets: dict[str, str] = {}
    if config.get("CARD_SIGNING_KEY"):
        secrets[DEFAULT_KEY_ID] = str(config["CARD_SIGNING_KEY"])
    secrets.update(_pairs(config.get("CARD_SIGNING_KEYS")))
    for key_id in _ids(config.get("CARD_RETIRED_KEY_IDS")):
        secrets.pop(key_id, None)
    if not secrets:
        raise KeyringError("no card signing key: run `integrity-pos init-db` to create one")
    current = str(config.get("CARD_SIGNING_KEY_ID") or DEFAULT_KEY_ID)
    return Keyring(current, {k: v.encode() for k, v in secrets.items()})

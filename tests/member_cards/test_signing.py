"""The payload codec alone: format, size, alteration, truncation, junk and key rotation."""

from __future__ import annotations

import string

import pytest

from member_cards import signing
from member_cards.signing import Keyring, KeyringError, PayloadError

# QR code alphanumeric mode: exactly these 45 characters.
QR_ALPHANUMERIC = string.digits + string.ascii_uppercase + " $%*+-./:"
KEYS = Keyring("1", {"1": b"test-card-key"})


def test_round_trip_names_household_card_and_key() -> None:
    payload = signing.encode(KEYS, 123, 2)
    claims = signing.decode(KEYS, payload)
    assert claims == signing.CardClaims("1", 123, 2)
    assert payload.startswith("IC1.1.123.2.")
    assert signing.card_serial(123, 2) == "000123-02"


@pytest.mark.parametrize(
    ("household_id", "number"), [(1, 1), (999_999, 99), (2**31 - 1, signing.MAX_CARD_NUMBER)]
)
def test_payload_is_short_and_qr_alphanumeric(household_id: int, number: int) -> None:
    keys = Keyring("ZZZZ", {"ZZZZ": b"k"})
    payload = signing.encode(keys, household_id, number)
    assert len(payload) <= 80
    assert set(payload) <= set(QR_ALPHANUMERIC)
    assert signing.decode(keys, payload).household_id == household_id


def test_encoding_is_deterministic_per_key() -> None:
    assert signing.encode(KEYS, 5, 1) == signing.encode(KEYS, 5, 1)
    other = Keyring("1", {"1": b"another-key"})
    assert signing.encode(KEYS, 5, 1) != signing.encode(other, 5, 1)


def test_every_single_character_change_is_rejected() -> None:
    payload = signing.encode(KEYS, 4217, 3)
    variants = 0
    for position, original in enumerate(payload):
        for replacement in QR_ALPHANUMERIC:
            if replacement == original:
                continue
            altered = payload[:position] + replacement + payload[position + 1 :]
            with pytest.raises(PayloadError):
                signing.decode(KEYS, altered)
            variants += 1
    assert variants == len(payload) * (len(QR_ALPHANUMERIC) - 1)


def test_changes_that_keep_the_numbers_equal_are_rejected() -> None:
    payload = signing.encode(KEYS, 42, 1)
    prefix, signature = payload.rsplit(".", 1)
    for altered in (
        payload.replace(".42.", ".042."),
        payload.replace(".1.", ".01.", 1),
        payload.lower(),
        prefix + "." + signature.replace("0", "O").replace("1", "I"),
        payload + "0",
        " " + payload[1:],
    ):
        if altered != payload:
            with pytest.raises(PayloadError):
                signing.decode(KEYS, altered)


def test_every_truncation_is_rejected() -> None:
    payload = signing.encode(KEYS, 77, 1)
    for end in range(len(payload)):
        with pytest.raises(PayloadError):
            signing.decode(KEYS, payload[:end])
    for start in range(1, len(payload)):
        with pytest.raises(PayloadError):
            signing.decode(KEYS, payload[start:])


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "6901234567892",  # a product's EAN-13, scanned by mistake
        "69012345",
        "\x00\x01\x02\xff\xfe",
        "\ud800",
        "IC1",
        "IC1.1.1.1.",
        "IC1.1.1.1." + "0" * 20,
        "IC1.1.0.1." + "0" * 20,
        "IC1.1.99999999999.1." + "0" * 20,
        "IC2.1.1.1." + "0" * 20,
        "https://example.com/card?id=1",
        "覃德华",
        "A" * 10_000,
        None,
        123,
        b"IC1.1.1.1.00000000000000000000",
    ],
)
def test_junk_is_rejected(junk: object) -> None:
    with pytest.raises(PayloadError):
        signing.decode(KEYS, junk)


def test_scanner_line_endings_are_not_part_of_the_card() -> None:
    payload = signing.encode(KEYS, 9, 1)
    assert signing.decode(KEYS, payload + "\r\n").household_id == 9
    assert signing.decode(KEYS, "\t" + payload + "\n").household_id == 9


def test_forged_with_another_key_is_rejected() -> None:
    forger = Keyring("1", {"1": b"guessed-key"})
    with pytest.raises(PayloadError):
        signing.decode(KEYS, signing.encode(forger, 1, 1))


def test_key_rotation_accepts_old_cards_until_the_key_is_retired() -> None:
    old = Keyring("1", {"1": b"old-secret"})
    old_card = signing.encode(old, 10, 1)

    rotated = Keyring("2", {"1": b"old-secret", "2": b"new-secret"})
    new_card = signing.encode(rotated, 11, 1)
    assert new_card.startswith("IC1.2.")
    assert signing.decode(rotated, old_card).key_id == "1"
    assert signing.decode(rotated, new_card).key_id == "2"
    # Claiming the other key id for the same card does not verify.
    with pytest.raises(PayloadError):
        signing.decode(rotated, old_card.replace("IC1.1.", "IC1.2.", 1))

    retired = Keyring("2", {"2": b"new-secret"})
    assert signing.decode(retired, new_card).household_id == 11
    with pytest.raises(PayloadError):
        signing.decode(retired, old_card)


def test_keyring_from_config_defaults_to_the_instance_key_as_id_1() -> None:
    keyring = signing.keyring_from_config({"CARD_SIGNING_KEY": "abc"})
    assert keyring.current_id == "1"
    assert keyring.secrets == {"1": b"abc"}


def test_keyring_from_config_with_a_second_key_and_retirement() -> None:
    config = {
        "CARD_SIGNING_KEY": "abc",
        "CARD_SIGNING_KEYS": {"2": "def"},
        "CARD_SIGNING_KEY_ID": "2",
    }
    keyring = signing.keyring_from_config(config)
    assert keyring.current_id == "2"
    assert set(keyring.secrets) == {"1", "2"}
    env_style = signing.keyring_from_config(
        {"CARD_SIGNING_KEY": "abc", "CARD_SIGNING_KEYS": "2=def, 3=ghi", "CARD_SIGNING_KEY_ID": "3"}
    )
    assert set(env_style.secrets) == {"1", "2", "3"}
    retired = signing.keyring_from_config({**config, "CARD_RETIRED_KEY_IDS": ["1"]})
    assert set(retired.secrets) == {"2"}
    assert set(signing.keyring_from_config({**config, "CARD_RETIRED_KEY_IDS": "1"}).secrets) == {
        "2"
    }


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"CARD_SIGNING_KEY": "abc", "CARD_SIGNING_KEY_ID": "9"},
        {"CARD_SIGNING_KEY": "abc", "CARD_RETIRED_KEY_IDS": ["1"]},
        {"CARD_SIGNING_KEY": "abc", "CARD_SIGNING_KEYS": {"two": "x"}},
        {"CARD_SIGNING_KEY": "abc", "CARD_SIGNING_KEYS": {"2": ""}},
        {"CARD_SIGNING_KEY": "abc", "CARD_SIGNING_KEYS": "2"},
    ],
)
def test_unusable_key_configuration_is_refused(config: dict[str, object]) -> None:
    with pytest.raises(KeyringError):
        signing.keyring_from_config(config)

"""The one reading of scanned and typed text: NFKC, trimmed, codes upper-cased, whole numbers."""

from __future__ import annotations

import marshmallow as ma
import pytest
from marshmallow import validate

from core.scanned import (
    ScannedString,
    normalize_code,
    normalize_scanned,
    parse_scanned_int,
)
from tests.helpers.text import full_width


def test_full_width_is_read_back_as_ascii() -> None:
    printable = "".join(chr(c) for c in range(ord("!"), ord("~") + 1))
    assert full_width(printable) != printable
    assert normalize_scanned(full_width(printable)) == printable
    assert normalize_scanned(full_width("IC1.1.9")) == "IC1.1.9"


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        # A Chinese input method in full-width mode: letters, digits, dot and hyphen.
        ("ＩＣ１．１．１２３", "IC1.1.123"),
        ("６９０１２３４５６７８９２", "6901234567892"),
        ("ＲＩＣＥ－１０", "RICE-10"),
        ("ｒｉｃｅ＿１０", "rice_10"),
        # The ideographic space and the no-break space are spaces, and trimmed.
        ("\u3000SOAP\u3000", "SOAP"),
        ("\u00a0SOAP\u00a0", "SOAP"),
        # What a scanner ends with, and what pasted text starts with.
        ("SOAP\r\n", "SOAP"),
        ("\tSOAP\t", "SOAP"),
        ("\x00SOAP\x00", "SOAP"),
        ("\ufeffSOAP\u200b", "SOAP"),
        ("\x1b SOAP \x1d", "SOAP"),
        # Inside, the value is left for validation to judge.
        ("RICE 10", "RICE 10"),
        ("A\x00B", "A\x00B"),
        # Case is kept: only codes whose case is noise are upper-cased.
        ("rice-10", "rice-10"),
        ("", ""),
        (" \t\r\n\u3000", ""),
        ("覃德华", "覃德华"),
    ],
)
def test_normalize_scanned(typed: str, read: str) -> None:
    assert normalize_scanned(typed) == read
    # Reading twice reads the same: API schemas and services may both apply it.
    assert normalize_scanned(read) == read


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("ic1.1.123.2.7k3qx0m5rtb9w2zc4n8a", "IC1.1.123.2.7K3QX0M5RTB9W2ZC4N8A"),
        ("ｉｃ１．１．１２３", "IC1.1.123"),
        (" gjy-20260101-0001\r\n", "GJY-20260101-0001"),
        ("ＧＪＹ－２０２６０１０１－０００１", "GJY-20260101-0001"),
        ("", ""),
    ],
)
def test_normalize_code_also_ignores_case(typed: str, read: str) -> None:
    assert normalize_code(typed) == read


@pytest.mark.parametrize("junk", [None, 123, b"IC1", ["IC1"]])
def test_only_text_is_normalized(junk: object) -> None:
    with pytest.raises(TypeError):
        normalize_scanned(junk)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        normalize_code(junk)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "number"),
    [
        ("13", 13),
        ("１３", 13),
        (" １３\u3000", 13),
        ("-5", -5),
        ("－５", -5),
        ("\u22125", -5),  # the minus sign of a maths keyboard
        ("+5", 5),
        ("＋５", 5),
        ("0", 0),
        ("-0", 0),
        ("007", 7),
        ("13\r\n", 13),
    ],
)
def test_whole_numbers_typed_any_way_are_read(typed: str, number: int) -> None:
    assert parse_scanned_int(typed) == number


NOT_NUMBERS = ["", " ", "-", "+", "--5", "+-1", "- 5", "1 000", "1_000", "1.0", "1e3", "NaN"]
NOT_NUMBERS += ["abc", "1" * 101, "\x00", "1\x002"]
# NFKC makes digits of ², ① and ½ too, but nobody types those meaning a number.
NOT_TYPED_DIGITS = ["²", "①", "½", "٣", "十三"]


@pytest.mark.parametrize("junk", [*NOT_NUMBERS, *NOT_TYPED_DIGITS])
def test_anything_else_is_not_a_whole_number(junk: str) -> None:
    assert parse_scanned_int(junk) is None


def test_the_number_of_digits_is_bounded() -> None:
    assert parse_scanned_int("9" * 9, max_digits=9) == 999_999_999
    assert parse_scanned_int("1" + "0" * 9, max_digits=9) is None
    assert parse_scanned_int("1" * 100) == int("1" * 100)


class _Schema(ma.Schema):
    sku = ScannedString(validate=validate.Length(min=1, max=8))
    receipt_no = ScannedString(upper=True, load_default=None)


def test_the_api_field_normalizes_before_it_validates() -> None:
    loaded = _Schema().load({"sku": " ＲＩＣＥ－１０\t", "receipt_no": "ｇｊｙ－２０２６"})
    assert loaded == {"sku": "RICE-10", "receipt_no": "GJY-2026"}
    assert _Schema().load({"sku": "rice"}) == {"sku": "rice", "receipt_no": None}
    # Only blanks: empty once read, so the length rule refuses it.
    with pytest.raises(ma.ValidationError) as refused:
        _Schema().load({"sku": "\u3000 \r\n"})
    assert "sku" in refused.value.messages
    with pytest.raises(ma.ValidationError):
        _Schema().load({"sku": 12})

"""EAN check digits computed by our own code, and in-store codes from the GS1 range 20-29."""

from __future__ import annotations

import pytest
from barcode import EAN13

from inventory.barcodes import (
    barcode_problem,
    ean_check_digit,
    in_store_code,
    in_store_serial,
    is_in_store,
    is_valid_ean,
    modules,
)

GOOD = [
    "6901234567892",  # EAN-13
    "4006381333931",
    "9787020002207",  # a book (978)
    "0000000000000",
    "96385074",  # EAN-8
    "40170725",
    "00000000",
]
BAD_CHECK_DIGIT = ["6901234567891", "4006381333932", "96385075", "40170720"]
NOT_EAN = [
    "",
    "690123456789",
    "69012345678921",
    "1234567",
    "123456789",
    "6901234567a92",
    " 6901234567892",
    "6901234567892\n",
    "６９０１２３４５６７８９２",
    "9638-074",
    "+9638507",
]


@pytest.mark.parametrize("code", GOOD)
def test_good_codes_pass(code):
    assert is_valid_ean(code)
    assert barcode_problem(code) is None


@pytest.mark.parametrize("code", BAD_CHECK_DIGIT)
def test_a_wrong_check_digit_is_refused_and_the_right_one_named(code):
    assert not is_valid_ean(code)
    assert str(barcode_problem(code)).endswith(ean_check_digit(code[:-1]))


@pytest.mark.parametrize("code", NOT_EAN)
def test_wrong_lengths_and_non_digits_are_refused(code):
    assert not is_valid_ean(code)


def test_check_digits_of_known_bodies():
    assert ean_check_digit("690123456789") == "2"
    assert ean_check_digit("400638133393") == "1"
    assert ean_check_digit("9638507") == "4"
    with pytest.raises(ValueError):
        ean_check_digit("12345678")


def test_python_barcode_would_have_hidden_the_mistake():
    # Why we validate ourselves: the library quietly prints a different number.
    assert EAN13("6901234567891").get_fullcode() == "6901234567892"
    with pytest.raises(ValueError):
        modules("6901234567891")


def test_in_store_codes_are_valid_ean13_in_our_prefix():
    codes = [in_store_code(serial) for serial in (1, 2, 9_999_999_999)]
    assert codes[0] == "2000000000015"
    assert all(is_valid_ean(c) and is_in_store(c) for c in codes)
    assert [in_store_serial(c) for c in codes] == [1, 2, 9_999_999_999]
    assert not is_in_store("6901234567892")
    with pytest.raises(ValueError):
        in_store_code(10**10)


def test_bar_patterns_have_the_standard_widths():
    assert len(modules("6901234567892")) == 95
    assert len(modules("96385074")) == 67

"""EAN-13 and EAN-8: check digits, validation and the shop's own in-store codes."""

from __future__ import annotations

from typing import Any

from barcode import EAN8, EAN13
from flask_babel import lazy_gettext as _l

# GS1 keeps prefixes 20-29 for numbers a shop assigns itself. 20 is ours; 21-29 are left to
# price-embedded codes printed by scales, so a scale label never collides with a shelf label.
IN_STORE_PREFIX = "20"
IN_STORE_SERIAL_DIGITS = 12 - len(IN_STORE_PREFIX)
EAN_LENGTHS = (8, 13)


def ean_check_digit(body: str) -> str:
    """The check digit of an EAN body (7 or 12 digits): weights 3 and 1 from the right."""
    if not body.isascii() or not body.isdigit() or len(body) not in (7, 12):
        raise ValueError(f"an EAN body is 7 or 12 digits, not {body!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str(-total % 10)


def barcode_problem(code: str) -> Any:
    """Why `code` is not a valid EAN-13 or EAN-8 (a lazy translated text); None when it is.

    Written out here because python-barcode silently replaces a wrong check digit.
    """
    if not code.isascii() or not code.isdigit():
        return _l("digits only")
    if len(code) not in EAN_LENGTHS:
        return _l("8 or 13 digits")
    expected = ean_check_digit(code[:-1])
    if code[-1] != expected:
        return _l("the check digit should be %(digit)s", digit=expected)
    return None


def is_valid_ean(code: str) -> bool:
    return barcode_problem(code) is None


def is_in_store(code: str) -> bool:
    return len(code) == 13 and code.startswith(IN_STORE_PREFIX)


def in_store_code(serial: int) -> str:
    """The in-store EAN-13 with this serial: prefix, zero-padded serial, check digit."""
    if not 0 < serial < 10**IN_STORE_SERIAL_DIGITS:
        raise ValueError(f"in-store serial out of range: {serial}")
    body = f"{IN_STORE_PREFIX}{serial:0{IN_STORE_SERIAL_DIGITS}d}"
    return body + ean_check_digit(body)


def in_store_serial(code: str) -> int:
    return int(code[len(IN_STORE_PREFIX) : 12])


def modules(code: str) -> str:
    """The bar pattern ('1' a dark module, '0' a light one) of a valid EAN-13 or EAN-8."""
    if not is_valid_ean(code):
        raise ValueError(f"not a valid EAN: {code!r}")
    symbol = EAN13(code[:12]) if len(code) == 13 else EAN8(code[:7])
    # Our check digit and the library's must agree, or we would print a different number.
    assert symbol.get_fullcode() == code
    return symbol.build()[0]

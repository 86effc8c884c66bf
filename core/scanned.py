"""The one reading of scanned and typed text (API.md): NFKC, trimmed, codes upper-cased."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from marshmallow import fields

# Longer than any number a person types on purpose; int() of thousands of digits is slow
# and, past 4300, an error. Callers' own ranges say "too large" for anything shorter.
MAX_INT_DIGITS = 100
# NFKC turns full-width －＋ into -+, but leaves the minus sign a maths keyboard types.
_SIGNS = str.maketrans({"\u2212": "-"})
_WHOLE_NUMBER = re.compile(r"[+-]?([0-9]+)")
# NFKC also makes digits of ² and ①; nobody types those meaning a number, so a number's
# digits must have been typed as ASCII or full-width ones.
_TYPED_DIGITS = frozenset("0123456789０１２３４５６７８９")
# Invisible characters besides whitespace that scanners and pasted text bring along:
# control characters (Cc: NUL, ESC, the Enter a scanner ends with) and format characters
# (Cf: a byte-order mark, zero-width spaces).
_EDGE_CATEGORIES = frozenset({"Cc", "Cf"})


def _is_edge_junk(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in _EDGE_CATEGORIES


def normalize_scanned(value: str) -> str:
    """The text as the data means it: Unicode NFKC, then whitespace and invisibles trimmed.

    NFKC makes what a Chinese input method types full-width (ＩＣ１．６９０, ６９０３)
    the ASCII it stands for, and the ideographic space a plain one. Only the ends are
    trimmed: whatever is inside is the value's, for validation to judge.
    """
    if not isinstance(value, str):
        raise TypeError(f"scanned text must be str, not {type(value).__name__}")
    text = unicodedata.normalize("NFKC", value)
    start, end = 0, len(text)
    while start < end and _is_edge_junk(text[start]):
        start += 1
    while end > start and _is_edge_junk(text[end - 1]):
        end -= 1
    return text[start:end]


def normalize_code(value: str) -> str:
    """normalize_scanned, upper-cased: for card payloads and receipt numbers.

    Their case carries no meaning, and a scanner with Caps Lock on types them in lower case.
    """
    return normalize_scanned(value).upper()


def parse_scanned_int(value: str, *, max_digits: int = MAX_INT_DIGITS) -> int | None:
    """A whole number typed in a field or a spreadsheet cell, or None if it is not one.

    Read after normalize_scanned, in ASCII or full-width digits only, with at most one
    sign in front: int() alone would also take "1_000", "٣" and "- 5". Give it the text
    as typed, not already normalized, or ² will have become a 2.
    """
    if any(char.isdigit() and char not in _TYPED_DIGITS for char in value):
        return None
    text = normalize_scanned(value).translate(_SIGNS)
    match = _WHOLE_NUMBER.fullmatch(text)
    if match is None or len(match[1]) > max_digits:
        return None
    return int(text)


class ScannedString(fields.String):
    """A string field of the API that reads its value through normalize_scanned.

    With upper=True, through normalize_code. Validators see the normalized value, so a
    length limit counts the characters that are stored or looked up.
    """

    def __init__(self, *, upper: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upper = upper

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        return normalize_code(text) if self.upper else normalize_scanned(text)

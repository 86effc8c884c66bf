"""Text as the world types it: full-width digits and letters from a Chinese input method."""

from __future__ import annotations


def full_width(text: str) -> str:
    """What a Chinese input method in full-width mode types for ASCII text."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)

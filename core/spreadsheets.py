"""Cells for files people open in Excel or WPS: text that looks like a formula stays text."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

# What Excel and WPS would run as a formula (or DDE) when the file is opened.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def formula_safe(value: Any) -> Any:
    """A leading apostrophe keeps a name like `=HYPERLINK(...)` a harmless string."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose every cell goes through formula_safe."""

    def __init__(self, out: Any, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([formula_safe(value) for value in row])

"""Member card tables."""

from __future__ import annotations

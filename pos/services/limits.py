"""What one sale or return may hold, checked in the same words by selling and by returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import ValidationFailed
from inventory import services as inventory

MAX_LINES = inventory.MAX_LINES
MAX_QUANTITY = inventory.MAX_QUANTITY
MAX_REASON = 500


def check_quantity(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        raise ValidationFailed(
            errors={"qty": [_l("a whole number from 1 to %(high)s", high=MAX_QUANTITY)]}
        )


def check_lines(lines: Sequence[Any]) -> None:
    if not 1 <= len(lines) <= MAX_LINES:
        raise ValidationFailed(errors={"lines": [_l("1 to %(most)s lines", most=MAX_LINES)]})


def read_reason(value: str | None) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(errors={"reason": [_l("required")]})
    if len(value) > MAX_REASON:
        raise ValidationFailed(
            errors={"reason": [_l("at most %(most)s characters", most=MAX_REASON)]}
        )
    return value

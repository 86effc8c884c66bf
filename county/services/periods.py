"""Calendar periods of the county's local time (month, quarter, year), and local days in SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func
from sqlalchemy.orm import Session

from core import dialects
from core.errors import ValidationFailed
from county.models import PeriodKind


@dataclass(frozen=True)
class Period:
    """A calendar month, quarter or year of the county's local time."""

    kind: str
    year: int
    number: int = 1

    @property
    def key(self) -> str:
        if self.kind == PeriodKind.MONTH:
            return f"{self.year:04d}-{self.number:02d}"
        if self.kind == PeriodKind.QUARTER:
            return f"{self.year:04d}-Q{self.number}"
        return f"{self.year:04d}"

    @property
    def label(self) -> str:
        # Printed on notices for the village board, so always the Chinese calendar words.
        if self.kind == PeriodKind.MONTH:
            return f"{self.year}年{self.number}月"
        if self.kind == PeriodKind.QUARTER:
            return f"{self.year}年第{self.number}季度"
        return f"{self.year}年"

    @property
    def first_day(self) -> date:
        if self.kind == PeriodKind.MONTH:
            return date(self.year, self.number, 1)
        if self.kind == PeriodKind.QUARTER:
            return date(self.year, 3 * self.number - 2, 1)
        return date(self.year, 1, 1)

    @property
    def end_day(self) -> date:
        """The first day after the period."""
        if self.kind == PeriodKind.MONTH:
            return _add_months(self.first_day, 1)
        if self.kind == PeriodKind.QUARTER:
            return _add_months(self.first_day, 3)
        return date(self.year + 1, 1, 1)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnight of the first day to local midnight after."""
        return day_bounds(self.first_day, self.end_day, tz)

    def previous(self) -> Period:
        if self.kind == PeriodKind.YEAR:
            return Period(self.kind, self.year - 1)
        size = 12 if self.kind == PeriodKind.MONTH else 4
        if self.number == 1:
            return Period(self.kind, self.year - 1, size)
        return Period(self.kind, self.year, self.number - 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def day_bounds(first: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
    return start, datetime.combine(end, time.min, tzinfo=tz).astimezone(UTC)


_PERIOD_RE = re.compile(r"^(\d{4})(?:-(?:(\d{1,2})|[Qq]([1-4])))?$")


def parse_period(text: str | None) -> Period:
    """'2026-11' (month), '2026-Q4' (quarter) or '2026' (year)."""
    match = _PERIOD_RE.match((text or "").strip())
    year = int(match.group(1)) if match else 0
    if not match or not 2000 <= year <= 2999:
        raise ValidationFailed(errors={"period": [_l("use YYYY-MM, YYYY-Q1 to YYYY-Q4, or YYYY")]})
    month, quarter = match.group(2), match.group(3)
    if month is not None:
        if not 1 <= int(month) <= 12:
            raise ValidationFailed(errors={"period": [_l("the month must be 1 to 12")]})
        return Period(PeriodKind.MONTH, year, int(month))
    if quarter is not None:
        return Period(PeriodKind.QUARTER, year, int(quarter))
    return Period(PeriodKind.YEAR, year)


def period_containing(kind: str, day: date) -> Period:
    if kind == PeriodKind.MONTH:
        return Period(kind, day.year, day.month)
    if kind == PeriodKind.QUARTER:
        return Period(kind, day.year, (day.month - 1) // 3 + 1)
    return Period(PeriodKind.YEAR, day.year)


def parse_month(text: str | None) -> Period:
    period = parse_period(text)
    if period.kind != PeriodKind.MONTH:
        raise ValidationFailed(errors={"month": [_l("use YYYY-MM")]})
    return period


def current_month(now: datetime, tz: ZoneInfo) -> Period:
    return period_containing(PeriodKind.MONTH, now.astimezone(tz).date())


def local_text(session: Session, column: Any, tz: ZoneInfo, fmt: str, *, at: datetime) -> Any:
    """A timestamp column as local 'YYYY-MM' or 'YYYY-MM-DD' text, computed in the database.

    `at` is a moment of the range the column is read over (its start, say): SQLite is
    given the zone's UTC offset then, never the clock's.
    """
    if dialects.is_postgresql(session.get_bind()):
        pg = {"month": "YYYY-MM", "day": "YYYY-MM-DD"}[fmt]
        return func.to_char(func.timezone(tz.key, column), pg)
    # SQLite keeps naive UTC text and knows no zones; the county's has had one fixed
    # offset since 1991, so the offset at `at` holds for the whole range.
    offset = at.astimezone(tz).utcoffset() or timedelta(0)
    sqlite = {"month": "%Y-%m", "day": "%Y-%m-%d"}[fmt]
    return func.strftime(sqlite, column, f"{int(offset.total_seconds() // 60):+d} minutes")

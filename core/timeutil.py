"""Local time for people: the county's time zone, and the business day as a local date."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def local_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def to_local(at: datetime) -> datetime:
    return at.astimezone(local_tz())


def business_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()

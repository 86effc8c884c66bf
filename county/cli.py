"""County commands: `integrity-pos county refresh` and `integrity-pos county notice`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from core.db import db, run_unit_of_work, utcnow
from core.errors import DomainError
from core.fonts import find_cjk_font
from core.timeutil import local_tz
from county import notices
from county import services as county
from ledger import services as ledger


@click.group()
def county_group() -> None:
    """The county office's reports."""


@county_group.command("refresh")
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 120))
@with_appcontext
def refresh(months: int) -> None:
    """Fold the closed days of the last MONTHS months into the dashboard's caches.

    The dashboard does this itself on its first visit; run it at night (cron, Task
    Scheduler) so that the first visit of the day is as quick as the rest.
    """
    now, tz = utcnow(), local_tz()
    month = county.current_month(now, tz)
    run_unit_of_work(
        lambda: (
            county.monthly_points(db.session, tz=tz, last=month, months=months, now=now),
            county.goods_days(db.session, tz=tz, first=month.first_day, end=month.end_day, now=now),
        )
    )
    click.echo(f"folded the closed days of {months} months up to {month.key}")


@county_group.command("notice")
@click.option("--village", "village_code", required=True, help="village code")
@click.option("--period", default=None, help="2026-11, 2026-Q4 or 2026; default this month")
@click.option("--top", default=county.DEFAULT_VILLAGE_TOP, type=click.IntRange(1, county.MAX_TOP))
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def notice(village_code: str, period: str | None, top: int, out: Path) -> None:
    """Write a village's red and black list notice for a period as an A4 PDF."""
    tz = local_tz()
    try:
        chosen = county.parse_period(period) if period else county.current_month(utcnow(), tz)
        village = ledger.get_village(db.session, village_code)
        pdf = notices.render_notice(
            county.red_list(db.session, period=chosen, tz=tz, village=village, top=top),
            county.black_list(db.session, period=chosen, tz=tz, village=village),
            county.ten_star_list(db.session, period=chosen, tz=tz, village=village),
            font_path=find_cjk_font(current_app.config.get("CJK_FONT_PATH")),
            tz=tz,
            today=utcnow().astimezone(tz).date(),
        )
    except DomainError as exc:
        fields = exc.extra.get("errors") or {}
        detail = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in fields.items())
        raise click.ClickException(detail or str(exc.detail or exc.title)) from exc
    out.write_bytes(pdf)
    click.echo(f"wrote {out} ({chosen.label}, {village.name})")


county_group.name = "county"

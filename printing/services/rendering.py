"""A job's exact ESC/POS bytes, rendered from the committed sale or the day's report."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from pos import services as pos
from printing.models import JobKind, PrintJob
from printing.services.settings import PrinterSettings


class _Internal:
    """The print worker reading a report on nobody's behalf but the printer's.

    The job was authorized when it was queued; the services' guards let this one through.
    """

    id = None
    role = "admin"
    is_admin = True
    shop_code = None

    def may_sell_at(self, _shop_code: str) -> bool:
        return True

    def may_manage_shop(self, _shop_code: str) -> bool:
        return True

    def require_shop_staff(self, _shop_code: str) -> None:
        return None

    def require_shop_manager(self, _shop_code: str) -> None:
        return None


INTERNAL: Any = _Internal()


def render_job(
    session: Session,
    job: PrintJob,
    settings: PrinterSettings,
    *,
    tz: ZoneInfo,
    font_path: str | None = None,
) -> bytes:
    """The job's exact ESC/POS bytes for this printer (needs an app context for Babel).

    `font_path` is the CJK font image mode draws with; text mode needs none.
    """
    if job.kind == JobKind.REPORT:
        assert job.report_day is not None
        report = pos.daily_report(
            session, actor=INTERNAL, shop_code=settings.shop_code, day=job.report_day, tz=tz
        )
        return pos.daily_report_escpos(
            report,
            paper_mm=settings.paper_mm,
            mode=settings.mode,
            profile=settings.profile,
            font_path=font_path,
        )
    assert job.sale_id is not None
    return pos.sale_receipt_escpos(
        session,
        actor=None,
        sale_id=job.sale_id,
        tz=tz,
        copy=job.kind == JobKind.COPY,
        paper_mm=settings.paper_mm,
        mode=settings.mode,
        profile=settings.profile,
        font_path=font_path,
    )

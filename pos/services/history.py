"""Sales already made: one sale as its shop may see it, a shop's sales found by number or day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import NotFound
from core.ids import is_id
from core.scanned import normalize_code
from ledger.models import Household
from pos.models import Sale


def get_sale(session: Session, *, actor: User, sale_id: int) -> Sale:
    sale = session.get(Sale, sale_id) if is_id(sale_id) else None
    if sale is None or not actor.may_sell_at(sale.shop_code):
        # Another shop's sale is as good as absent: ids must not reveal other shops' trade.
        raise NotFound(_l("no sale %(sale_id)s", sale_id=sale_id))
    return sale


def find_sales(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    receipt_no: str | None = None,
    household_id: int | None = None,
    day: date | None = None,
    limit: int = 100,
) -> Sequence[Sale]:
    """A shop's sales by receipt number, household or business day, newest first."""
    actor.require_shop_staff(shop_code)
    stmt = select(Sale).where(Sale.shop_code == shop_code)
    if receipt_no:
        stmt = stmt.where(Sale.receipt_no == _receipt_spelling(shop_code, receipt_no))
    if household_id is not None:
        stmt = stmt.where(Sale.household_id == household_id)
    if day is not None:
        stmt = stmt.where(Sale.business_day == day)
    return session.scalars(stmt.order_by(Sale.id.desc()).limit(limit)).all()


def _receipt_spelling(shop_code: str, receipt_no: str) -> str:
    """A typed receipt number as it is stored, its case being noise (API.md).

    Numbers read shop code, day and sequence (receipt_number); only the shop's code has
    letters, and it is stored as the shop spells it, so an exact, indexed match is kept.
    """
    typed = normalize_code(receipt_no)
    prefix = f"{shop_code}-"
    if typed.startswith(prefix.upper()):
        return prefix + typed[len(prefix) :]
    return typed


def household_heads(session: Session, household_ids: Sequence[int]) -> dict[int, str]:
    """Head of household by id, for lists of sales: one query, not one per row."""
    ids = set(household_ids)
    if not ids:
        return {}
    rows = session.execute(select(Household.id, Household.head_name).where(Household.id.in_(ids)))
    return dict(rows.all())

"""Reading the books: a household's statement (the family integrity file), system balances."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from ledger.models import Account, AccountKind, Transfer
from ledger.services.posting import signed_points
from ledger.services.registry import get_household


@dataclass(frozen=True)
class StatementEntry:
    id: int
    at: datetime
    kind: str
    points: int
    balance_after: int
    reason: str | None
    shop_code: str | None
    sale_id: int | None


def household_statement(
    session: Session, household_id: int, *, limit: int = 50, before: int | None = None
) -> list[StatementEntry]:
    """The family integrity file, newest first, by keyset on transfer id."""
    household = get_household(session, household_id)
    account_id = household.account.id
    other = aliased(Account)
    stmt = (
        select(Transfer, other.kind, other.code)
        .join(
            other,
            other.id
            == func.coalesce(
                func.nullif(Transfer.debit_account_id, account_id), Transfer.credit_account_id
            ),
        )
        .where(Transfer.chain_account_id == account_id)
        .order_by(Transfer.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(Transfer.id < before)
    entries = []
    for transfer, other_kind, other_code in session.execute(stmt):
        entries.append(
            StatementEntry(
                id=transfer.id,
                at=transfer.created_at,
                kind=transfer.kind,
                points=signed_points(transfer, account_id),
                balance_after=transfer.balance_after,
                reason=transfer.reason,
                shop_code=other_code.partition(":")[2] if other_kind == AccountKind.SHOP else None,
                sale_id=transfer.sale_id,
            )
        )
    return entries


def system_balance(session: Session, account_code: str) -> int:
    """Credits minus debits of a system account: an indexed sum, for reports only."""
    account_id = session.scalar(select(Account.id).where(Account.code == account_code))
    if account_id is None:
        return 0
    credits = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(
            Transfer.credit_account_id == account_id
        )
    )
    debits = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(
            Transfer.debit_account_id == account_id
        )
    )
    return int(credits or 0) - int(debits or 0)

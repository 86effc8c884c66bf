"""Reading the books: a household's statement (the family integrity file), system balances."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, not_, or_, select
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
    """The family integrity file, newest first by when each entry happened (then by id).

    Ids are the order of posting, and a posting may be dated earlier than one before it
    (a sale made offline reaches the county later, with its own time), so time orders
    the file. `balance_after` is the running balance in this same order, counted back
    from the balance now, so the column reads without jumps. `before` is the id of the
    last entry of the previous page.
    """
    household = get_household(session, household_id)
    account_id = household.account.id
    signed = case(
        (Transfer.credit_account_id == account_id, Transfer.amount), else_=-Transfer.amount
    )
    mine = Transfer.chain_account_id == account_id
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
        .where(mine)
        .order_by(Transfer.created_at.desc(), Transfer.id.desc())
        .limit(limit)
    )
    # Read now, not from the identity map: postings move it with Core statements.
    balance = int(session.scalar(select(Account.balance).where(Account.id == account_id)) or 0)
    if before is not None:
        at = session.scalar(select(Transfer.created_at).where(mine, Transfer.id == before))
        if at is None:
            # Not an entry of this file (a hand-made cursor): older by id, as ids run.
            older = Transfer.id < before
            newer = Transfer.id >= before
        else:
            older = or_(
                Transfer.created_at < at, and_(Transfer.created_at == at, Transfer.id < before)
            )
            newer = not_(older)
        stmt = stmt.where(older)
        later = session.scalar(select(func.coalesce(func.sum(signed), 0)).where(mine, newer))
        balance -= int(later or 0)
    entries = []
    for transfer, other_kind, other_code in session.execute(stmt):
        points = signed_points(transfer, account_id)
        entries.append(
            StatementEntry(
                id=transfer.id,
                at=transfer.created_at,
                kind=transfer.kind,
                points=points,
                balance_after=balance,
                reason=transfer.reason,
                shop_code=other_code.partition(":")[2] if other_kind == AccountKind.SHOP else None,
                sale_id=transfer.sale_id,
            )
        )
        balance -= points
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

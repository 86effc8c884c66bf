"""Deeds: the awards and penalties a period counts, the one rule rankings and dashboard share."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from core import dialects
from county.services.periods import Period
from ledger import services as ledger
from ledger.models import Account, Household, Transfer, TransferKind, Village


def _system_account_id(session: Session, code: str) -> int:
    return session.scalar(select(Account.id).where(Account.code == code)) or 0


def _without_jit(session: Session) -> None:
    """PostgreSQL's JIT compiles these half-second aggregates for longer than they run
    (over a second at 10 million transfers); switch it off for this transaction only."""
    if dialects.is_postgresql(session.get_bind()):
        session.execute(text("SET LOCAL jit = off"))


def counted_deeds(session: Session, start: datetime, end: datetime) -> Any:
    """What counts as a deed, posted in [start, end): a condition on Transfer.

    Awards and penalties that no correction undid. Corrected transfers and their
    corrections both drop out: a mistaken award or penalty never counted, in whichever
    period it was posted and whenever it was corrected. Awards are found as debits of
    the issuance account and penalties as credits of the penalty sink, so the (account,
    created_at) indexes the ledger already keeps do the range scan. Rankings, stars and
    the dashboard all count through here, so their figures cannot drift apart.
    """
    issuance = _system_account_id(session, ledger.ISSUANCE_CODE)
    penalty = _system_account_id(session, ledger.PENALTY_CODE)
    undo = aliased(Transfer)
    return and_(
        Transfer.created_at >= start,
        Transfer.created_at < end,
        or_(
            and_(Transfer.debit_account_id == issuance, Transfer.kind == TransferKind.AWARD),
            and_(Transfer.credit_account_id == penalty, Transfer.kind == TransferKind.PENALTY),
        ),
        ~exists().where(undo.reverses_id == Transfer.id),
    )


def _deeds(session: Session, period: Period, tz: ZoneInfo, village: Village | None) -> Any:
    """The period's counted deeds (see counted_deeds), each with its household."""
    _without_jit(session)
    stmt = (
        select(
            Transfer.id.label("transfer_id"),
            Household.id.label("household_id"),
            Transfer.kind.label("kind"),
            Transfer.amount.label("amount"),
            case(
                (Transfer.kind == TransferKind.AWARD, Transfer.amount), else_=-Transfer.amount
            ).label("signed"),
            Transfer.rule_id.label("rule_id"),
            Transfer.reason.label("reason"),
            Transfer.created_at.label("created_at"),
        )
        .select_from(Transfer)
        .join(Account, Account.id == Transfer.chain_account_id)
        .join(Household, Household.id == Account.household_id)
        .where(counted_deeds(session, *period.bounds(tz)))
    )
    if village is not None:
        stmt = stmt.where(Household.village_id == village.id)
    return stmt.subquery("deeds")


def _scores(deeds: Any) -> Any:
    earned = func.sum(case((deeds.c.kind == TransferKind.AWARD, deeds.c.amount), else_=0))
    penalised = func.sum(case((deeds.c.kind == TransferKind.PENALTY, deeds.c.amount), else_=0))
    return (
        select(
            deeds.c.household_id,
            earned.label("earned"),
            penalised.label("penalised"),
            (earned - penalised).label("score"),
            func.count().label("deeds"),
        )
        .group_by(deeds.c.household_id)
        .subquery("scores")
    )

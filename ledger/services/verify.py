"""The ledger's self-check: every hash, chain link and cached balance recomputed from history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.chain import GENESIS, transfer_digest
from ledger.models import Account, AccountKind, Transfer, TransferKind
from ledger.signals import verifying


@dataclass
class VerifyReport:
    ok: bool
    transfers_checked: int
    first_bad_id: int | None = None
    problems: list[str] = field(default_factory=list)
    # Filled by the shop nodes' check (ledger.signals.verifying): their offline sales.
    node_sales_checked: int = 0
    first_bad_node_sale: dict[str, Any] | None = None


@dataclass
class _ChainState:
    head: str = GENESIS
    seq: int = 0
    balance: int = 0
    earned: int = 0
    penalty: int = 0
    redeemed: int = 0
    last_id: int | None = None


_TOTAL_FOR_KIND = {
    TransferKind.AWARD: ("earned", 1),
    TransferKind.PENALTY: ("penalty", 1),
    TransferKind.REDEMPTION: ("redeemed", 1),
    TransferKind.REFUND: ("redeemed", -1),
}


def verify_ledger(session: Session, *, batch: int = 10_000) -> VerifyReport:
    """Recompute every hash, chain link and cached balance; name the first bad transfer."""
    chains: dict[int, _ChainState] = {}
    kinds_of_reversed: dict[int, str] = {}
    report = VerifyReport(ok=True, transfers_checked=0)
    bad_ids: list[int] = []

    def flag(transfer_id: int | None, problem: str) -> None:
        report.ok = False
        report.problems.append(problem)
        if transfer_id is not None:
            bad_ids.append(transfer_id)

    for t in session.scalars(
        select(Transfer).order_by(Transfer.id).execution_options(yield_per=batch)
    ):
        report.transfers_checked += 1
        state = chains.setdefault(t.chain_account_id, _ChainState())
        if t.chain_account_id not in (t.debit_account_id, t.credit_account_id) or t.amount <= 0:
            flag(t.id, f"transfer {t.id}: malformed sides or amount")
        signed = t.amount if t.credit_account_id == t.chain_account_id else -t.amount
        expected_seq, expected_balance = state.seq + 1, state.balance + signed
        recomputed = transfer_digest(
            t.prev_hash,
            idempotency_key=t.idempotency_key,
            kind=t.kind,
            debit_account_id=t.debit_account_id,
            credit_account_id=t.credit_account_id,
            amount=t.amount,
            chain_account_id=t.chain_account_id,
            entry_seq=t.entry_seq,
            balance_after=t.balance_after,
            created_at=t.created_at,
            reason=t.reason,
            sale_id=t.sale_id,
            reverses_id=t.reverses_id,
        )
        if recomputed != t.hash:
            flag(t.id, f"transfer {t.id}: its hash does not match its contents")
        elif t.prev_hash != state.head:
            flag(t.id, f"transfer {t.id}: does not follow the previous transfer of its account")
        elif t.entry_seq != expected_seq or t.balance_after != expected_balance:
            flag(t.id, f"transfer {t.id}: position or balance_after out of step with history")
        state.head, state.seq, state.balance, state.last_id = (
            t.hash,
            expected_seq,
            expected_balance,
            t.id,
        )
        if t.kind == TransferKind.CORRECTION and t.reverses_id is not None:
            bucket = (
                "earned"
                if kinds_of_reversed.get(t.reverses_id) == TransferKind.AWARD
                else "penalty"
            )
            setattr(state, bucket, getattr(state, bucket) - t.amount)
        elif t.kind in _TOTAL_FOR_KIND:
            bucket, sign = _TOTAL_FOR_KIND[TransferKind(t.kind)]
            setattr(state, bucket, getattr(state, bucket) + sign * t.amount)
        if t.kind in (TransferKind.AWARD, TransferKind.PENALTY):
            kinds_of_reversed[t.id] = t.kind
        session.expunge(t)

    for account in session.scalars(
        select(Account).where(Account.kind == AccountKind.HOUSEHOLD).order_by(Account.id)
    ):
        state = chains.get(account.id, _ChainState())
        cached = (
            account.balance,
            account.earned_total,
            account.penalty_total,
            account.redeemed_total,
            account.entry_count,
            account.head_hash,
        )
        derived = (
            state.balance,
            state.earned,
            state.penalty,
            state.redeemed,
            state.seq,
            state.head,
        )
        if cached != derived:
            flag(
                state.last_id,
                f"account {account.code}: cached balance or totals disagree with its history",
            )
    if bad_ids:
        report.first_bad_id = min(bad_ids)
    verifying.send(session, report=report)
    return report

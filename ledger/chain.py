"""The tamper-evident chain: a transfer's hash over its predecessor and canonical fields."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def transfer_digest(
    prev_hash: str,
    *,
    idempotency_key: str,
    kind: str,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    chain_account_id: int,
    entry_seq: int,
    balance_after: int,
    created_at: datetime,
    reason: str | None,
    sale_id: int | None,
    reverses_id: int | None,
) -> str:
    # A JSON array fixes field order and escaping; any change to any field changes the hash.
    fields: list[Any] = [
        idempotency_key,
        kind,
        debit_account_id,
        credit_account_id,
        amount,
        chain_account_id,
        entry_seq,
        balance_after,
        canonical_time(created_at),
        reason,
        sale_id,
        reverses_id,
    ]
    payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()

"""The hash chain of a node's offline sales: pure functions the node and the county share.

Each offline sale is chained to the node's previous one: `hash = sha256(prev_hash +
canonical JSON of the sale's fields)`. The node computes it as it sells; the county
recomputes it on intake and in `ledger verify`. Nothing here touches a database or Flask,
so the node process imports this module as it is.

The county hashes what it read: skus and receipt numbers after core.scanned (NFKC,
trimmed; receipt numbers upper-case), the time as canonical_time spells it. A node that
sends them in that form computes the same hash as the county.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# The previous hash of a node's first sale.
GENESIS = "0" * 64

# The fields a sale's hash covers, in the request's own words (API: POST /node/sales).
HASHED_FIELDS = (
    "shop_code",
    "seq",
    "idempotency_key",
    "receipt_no",
    "made_at",
    "household_id",
    "card_digest",
    "lines",
)


def canonical_time(value: datetime) -> str:
    """A moment as the chain spells it: UTC, microseconds, `+00:00`."""
    if value.tzinfo is None:
        raise ValueError("a sale's time needs its offset")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_lines(lines: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Lines as [sku, qty] pairs, in the order the node sold them."""
    return [[str(line["sku"]), int(line["qty"])] for line in lines]


def sale_fields(
    *,
    shop_code: str,
    seq: int,
    idempotency_key: str,
    receipt_no: str,
    made_at: datetime,
    household_id: int,
    card_digest: str | None,
    lines: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The hashed fields of one offline sale, each in its canonical form."""
    return {
        "shop_code": shop_code,
        "seq": int(seq),
        "idempotency_key": idempotency_key,
        "receipt_no": receipt_no,
        "made_at": canonical_time(made_at),
        "household_id": int(household_id),
        "card_digest": card_digest,
        "lines": canonical_lines(lines),
    }


def canonical_json(fields: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 as is: the same text on every machine."""
    missing = set(HASHED_FIELDS) - set(fields)
    if missing:
        raise ValueError(f"missing sale fields: {sorted(missing)}")
    chosen = {name: fields[name] for name in HASHED_FIELDS}
    return json.dumps(chosen, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sale_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of an offline sale that follows `prev_hash` (fields as sale_fields gives)."""
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()

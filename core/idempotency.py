"""Idempotency keys: what makes two requests with one key "the same body", and the replay."""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l

from core.errors import IdempotencyConflict

T = TypeVar("T")


def request_fingerprint(**fields: Any) -> str:
    """A stable hash of the request's meaningful fields; a replay must match it exactly."""
    payload = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def replay_or_conflict(
    existing: T | None, *, recorded: str | None, fingerprint: str, key: str
) -> T | None:
    """What the first request with this key made, if this request is the same one.

    `existing` is whatever the caller answers a replay with (a row, or only its id when
    the look-up rode along with another query) and None when the key is new; `recorded`
    is the fingerprint stored with it. The same fingerprint gets `existing` back, so a
    retry answers the first result again; another one is a different request under a
    used key, refused as 409 idempotency_conflict. `key` is named as the client sent it.
    """
    if existing is None:
        return None
    if recorded != fingerprint:
        raise IdempotencyConflict(
            _l("idempotency key %(key)s was used for another request", key=key)
        )
    return existing

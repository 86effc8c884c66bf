"""Idempotency keys: what makes two requests with one key "the same body"."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def request_fingerprint(**fields: Any) -> str:
    """A stable hash of the request's meaningful fields; a replay must match it exactly."""
    payload = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()

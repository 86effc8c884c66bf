"""The node's clock: the PC's own, or shifted by a set number of seconds.

Counter PCs in the villages keep bad time, and the tests must play one that runs minutes
ahead or behind the county: `INTEGRITY_POS_NODE_CLOCK_SKEW_SECONDS` shifts this clock
(the tests' hook; an operator has no reason to set it). Offline sales are stamped with
this clock corrected by the skew the syncer last measured against the county's.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from core.db import utcnow

ENV = "INTEGRITY_POS_NODE_CLOCK_SKEW_SECONDS"


def _shift() -> timedelta:
    try:
        return timedelta(seconds=float(os.environ.get(ENV, "0") or 0))
    except ValueError:
        return timedelta(0)


_SHIFT = _shift()


def now() -> datetime:
    """This PC's idea of the time (UTC, aware)."""
    return utcnow() + _SHIFT

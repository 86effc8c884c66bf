"""One rate limiter for the app: the public balance page and signing in are what it slows."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# Memory storage per process is enough: the limits slow a guesser down, while the real
# defences are card signatures and the account lockout kept in the database.
limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", strategy="moving-window")

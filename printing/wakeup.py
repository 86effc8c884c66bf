"""Waking the print worker and waiting agents once a transaction with new jobs commits.

Services note the shop of each job they queue on the session (`note_pending`), since a job
is only there for the worker once its transaction commits. `listen` (called by printing's
init_app for the app's session, not for every Session in the process) turns that commit into
a wake-up and forgets the shops on rollback. A wake-up missed costs latency only: the worker
polls the queue anyway, and agents' long polls look at the database every second.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

# Shops with a job queued in the session's transaction.
PENDING_KEY = "printing_pending_shops"


class Sleeper(Protocol):
    def wake(self) -> None: ...


_changed = threading.Condition()
_generation: dict[int, int] = {}
_sleepers: weakref.WeakSet[Any] = weakref.WeakSet()


def note_pending(session: Session, shop_id: int) -> None:
    """Wake the shop's sender when this session's transaction commits."""
    session.info.setdefault(PENDING_KEY, set()).add(shop_id)


def _after_commit(session: Session) -> None:
    shops = session.info.pop(PENDING_KEY, None)
    if shops:
        wake_all(shops)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def listen(sessions: Any) -> None:
    """Wake on commits of `sessions` (a scoped session, a sessionmaker); once, however often."""
    for name, listener in (("after_commit", _after_commit), ("after_rollback", _after_rollback)):
        if not event.contains(sessions, name, listener):
            event.listen(sessions, name, listener)


def add_sleeper(sleeper: Sleeper) -> None:
    """Wake `sleeper` (a print worker) too whenever a job is queued in this process."""
    _sleepers.add(sleeper)


def remove_sleeper(sleeper: Sleeper) -> None:
    _sleepers.discard(sleeper)


def generation(shop_id: int) -> int:
    with _changed:
        return _generation.get(shop_id, 0)


def wait_for_jobs(shop_id: int, seen: int, timeout: float) -> None:
    """Sleep until a job is queued for the shop in this process, or the timeout passes.

    Jobs queued by another process are found by the caller's next look at the database.
    """
    with _changed:
        _changed.wait_for(lambda: _generation.get(shop_id, 0) != seen, timeout=timeout)


def wake_all(shop_ids: Iterable[int]) -> None:
    """Nudge every worker and waiting agent now (on commit, in tests, and for jobs queued
    outside a commit)."""
    with _changed:
        for shop_id in shop_ids:
            _generation[shop_id] = _generation.get(shop_id, 0) + 1
        _changed.notify_all()
    for sleeper in list(_sleepers):
        sleeper.wake()

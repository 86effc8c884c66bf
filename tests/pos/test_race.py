"""Many counters selling to one household at once: never overdrawn, never sold twice."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter as Tally
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from accounts.auth import User
from core.db import db, utcnow
from core.errors import DomainError
from core.timeutil import local_tz
from ledger.services import verify_ledger
from member_cards.signing import keyring_from_config
from pos import services as pos
from pos.models import Sale
from tests.factories import ensure_shop_account
from tests.helpers.threads import run_threads
from tests.pos.conftest import balance, on_hand

THREADS = 12


def _sales() -> int:
    db.session.rollback()
    try:
        return int(db.session.scalar(select(func.count(Sale.id))) or 0)
    finally:
        db.session.rollback()


def _ledger_ok() -> None:
    db.session.rollback()
    report = verify_ledger(db.session)
    db.session.rollback()
    assert report.ok, report.problems


def test_many_counters_selling_to_one_household_sell_exactly_what_it_can_afford(
    app, counter, thread_engine
):
    ensure_shop_account(db.session, "GJY")
    clerk_id, household_id = counter.clerk.id, counter.household.id
    keyring, tz = keyring_from_config(app.config), local_tz()
    db.session.rollback()

    def sell(i: int) -> str:
        # As transactional() does at the edge: a race the database settles is tried again.
        for _attempt in range(5):
            with Session(thread_engine, expire_on_commit=False) as session:
                actor = session.get(User, clerk_id)
                try:
                    pos.record_sale(
                        session,
                        actor=actor,
                        now=utcnow(),
                        tz=tz,
                        keyring=keyring,
                        shop_code="GJY",
                        lines=[pos.LineRequest(qty=1, sku="RICE-10")],
                        idempotency_key=f"race-{i}",
                        household_id=household_id,
                    )
                    session.commit()
                    return "sold"
                except DomainError as exc:
                    session.rollback()
                    return exc.code
                except (IntegrityError, OperationalError):
                    session.rollback()
        return "gave up"

    results = run_threads(THREADS, sell)
    # 300 points buy four bags of rice at 70, and not a fifth.
    assert Tally(results) == {"sold": 4, "insufficient_points": THREADS - 4}, results
    assert balance(counter.household) == 20
    assert on_hand(counter.shop, counter.rice) == 16
    assert _sales() == 4
    db.session.rollback()
    numbers = sorted(db.session.scalars(select(Sale.seq)).all())
    assert numbers == [1, 2, 3, 4]
    _ledger_ok()


def _post(url: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_over_http_one_key_retried_at_once_sells_once_and_distinct_keys_stop_at_zero(
    counter, factory, live_server
):
    token = factory.token(counter.clerk)
    ensure_shop_account(db.session, "GJY")
    url = f"{live_server}/api/v1/shops/GJY/sales"
    household_id = counter.household.id
    same = {"household_id": household_id, "lines": [{"sku": "OIL-5L", "qty": 1}]}
    db.session.rollback()

    replays = run_threads(8, lambda _i: _post(url, same | {"idempotency_key": "one"}, token))
    assert {status for status, _ in replays} == {201}, replays
    assert len({body["sale_id"] for _, body in replays}) == 1
    assert balance(counter.household) == 180

    rice = {"household_id": household_id, "lines": [{"sku": "RICE-10", "qty": 1}]}
    # Reading balance() above expired the test's objects; touching one now would reopen a
    # transaction and hold SQLite's write lock while the server works.
    results = run_threads(THREADS, lambda i: _post(url, rice | {"idempotency_key": f"k{i}"}, token))
    statuses = Tally(status for status, _ in results)
    assert statuses == {201: 2, 409: THREADS - 2}, results
    assert balance(counter.household) == 40
    assert on_hand(counter.shop, counter.rice) == 18
    assert on_hand(counter.shop, counter.oil) == 9
    assert _sales() == 3
    _ledger_ok()

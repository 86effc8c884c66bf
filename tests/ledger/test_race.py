"""Concurrent redemptions and retries on real connections: no overdraft, no double posting."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts.auth import Role, User
from core.db import db, utcnow
from core.errors import InsufficientPoints
from ledger import services as ledger
from ledger.models import Account, Transfer
from tests.factories import ensure_shop_account
from tests.helpers.threads import run_threads

THREADS = 16


def _account(household_id: int) -> Account:
    db.session.rollback()
    account = db.session.scalar(select(Account).where(Account.household_id == household_id))
    assert account is not None
    return account


def _verify_clean() -> None:
    db.session.rollback()
    report = ledger.verify_ledger(db.session)
    assert report.ok, report.problems
    db.session.rollback()


@pytest.fixture
def clerk_id(factory) -> int:
    ensure_shop_account(factory.session, "S1")
    return factory.user(Role.CLERK, shop="S1").id


def test_sixteen_counters_redeeming_from_one_household_never_overdraw(
    factory, thread_engine, clerk_id
):
    household_id = factory.household(balance=100).id
    db.session.rollback()

    def redeem(i: int) -> str:
        with Session(thread_engine, expire_on_commit=False) as session:
            actor = session.get(User, clerk_id)
            session.commit()
            try:
                posting = ledger.redeem_points(
                    session,
                    actor=actor,
                    now=utcnow(),
                    household_id=household_id,
                    shop_code="S1",
                    points=10,
                    idempotency_key=f"race-{i}",
                )
                session.commit()
            except InsufficientPoints:
                session.rollback()
                return "insufficient"
            assert posting.balance >= 0
            return "ok"

    results = run_threads(THREADS, redeem)
    assert Counter(results) == {"ok": 10, "insufficient": THREADS - 10}, results
    account = _account(household_id)
    assert (account.balance, account.redeemed_total, account.entry_count) == (0, 100, 11)
    balances = db.session.scalars(
        select(Transfer.balance_after)
        .where(Transfer.chain_account_id == account.id)
        .order_by(Transfer.id)
    ).all()
    assert balances == [100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 0]
    _verify_clean()


def test_redemptions_from_many_households_at_once_all_succeed(factory, thread_engine, clerk_id):
    # Every transfer also touches the shop's account; it must not serialize or deadlock them.
    village = factory.village()
    ids = [factory.household(village, balance=20).id for _ in range(THREADS)]
    db.session.rollback()

    def redeem(i: int) -> int:
        with Session(thread_engine, expire_on_commit=False) as session:
            actor = session.get(User, clerk_id)
            session.commit()
            posting = ledger.redeem_points(
                session,
                actor=actor,
                now=utcnow(),
                household_id=ids[i],
                shop_code="S1",
                points=15,
                idempotency_key=f"many-{i}",
            )
            session.commit()
            return posting.balance

    assert run_threads(THREADS, redeem) == [5] * THREADS
    assert ledger.system_balance(db.session, ledger.shop_account_code("S1")) == 15 * THREADS
    _verify_clean()


@pytest.mark.parametrize("operation", ["redemption", "award"])
def test_sixteen_retries_of_one_request_post_once(factory, thread_engine, clerk_id, operation):
    household_id = factory.household(balance=100).id
    admin_id = factory.admin.id
    db.session.rollback()

    def post(session: Session, actor: User) -> ledger.Posting:
        if operation == "redemption":
            return ledger.redeem_points(
                session,
                actor=actor,
                now=utcnow(),
                household_id=household_id,
                shop_code="S1",
                points=10,
                idempotency_key="one-key",
            )
        return ledger.post_award(
            session,
            actor=actor,
            now=utcnow(),
            household_id=household_id,
            points=-10,
            reason="乱倒垃圾",
            idempotency_key="one-key",
        )

    def retry(i: int) -> tuple[int, bool]:
        with Session(thread_engine, expire_on_commit=False) as session:
            actor = session.get(User, clerk_id if operation == "redemption" else admin_id)
            session.commit()
            # What `transactional` does at the edge: a unique clash on the key means another
            # request got there first; a fresh try replays it.
            for attempt in (1, 2):
                try:
                    posting = post(session, actor)
                    transfer_id = posting.transfer.id
                    session.commit()
                    return transfer_id, posting.replayed
                except IntegrityError:
                    session.rollback()
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    results = run_threads(THREADS, retry)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len({transfer_id for transfer_id, _ in results}) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * (THREADS - 1)
    account = _account(household_id)
    assert (account.balance, account.entry_count) == (90, 2)
    kind = "redemption" if operation == "redemption" else "award"
    count = db.session.scalars(
        select(Transfer.id).where(Transfer.idempotency_key == f"{kind}:one-key")
    ).all()
    assert len(count) == 1
    _verify_clean()


def test_same_key_over_http_from_sixteen_clients_posts_once(factory, live_server):
    # Half the clients retry a penalty, half an award, each under its own key, all at once.
    household_id = factory.household(balance=20).id
    token = factory.token(factory.admin)
    db.session.rollback()

    def body(points: int) -> bytes:
        return json.dumps(
            {
                "household_id": household_id,
                "points": points,
                "reason": "同一请求重试",
                "idempotency_key": f"http-key{points}",
            }
        ).encode()

    def post(i: int) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{live_server}/api/v1/awards",
            data=body(-5 if i % 2 else 7),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    results = run_threads(THREADS, post)
    assert Counter(status for status, _ in results) == {201: THREADS}, results
    for points in (-5, 7):
        bodies = [b for _, b in results if b["points"] == points]
        assert len(bodies) == THREADS // 2
        assert all(b == bodies[0] for b in bodies), bodies
        transfers = db.session.scalars(
            select(Transfer.id).where(Transfer.idempotency_key == f"award:http-key{points}")
        ).all()
        assert transfers == [bodies[0]["transfer_id"]]
    # Whichever came first, the balances after them are 20-5-then+7 or 20+7-then-5.
    assert {b["balance"] for _, b in results} in ({15, 22}, {27, 22})
    assert _account(household_id).balance == 22
    _verify_clean()

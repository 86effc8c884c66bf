"""Tampering with the ledger behind the app's back is caught by verify, which names the row."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import insert, select, text

from config.cli import main
from core.db import db, utcnow
from core.idempotency import request_fingerprint
from ledger import services as ledger
from ledger.chain import GENESIS, canonical_time, transfer_digest
from ledger.models import Account, Transfer


@dataclass
class History:
    h1: int  # account ids of the two households
    h2: int
    t: dict[str, int]  # transfer ids by name


@pytest.fixture
def history(factory) -> History:
    """Two households' interleaved transfers of every kind that has no dependants."""
    session, admin = factory.session, factory.admin
    village = factory.village()
    h1, h2 = factory.household(village), factory.household(village, head="向国强")
    t: dict[str, int] = {}

    def award(name, household, points):
        t[name] = ledger.post_award(
            session,
            actor=admin,
            now=utcnow(),
            household_id=household.id,
            idempotency_key=name,
            points=points,
            reason=f"理由 {name}",
        ).transfer.id

    def redeem(name, household, points):
        t[name] = ledger.redeem_points(
            session,
            actor=admin,
            now=utcnow(),
            household_id=household.id,
            shop_code="GJY",
            points=points,
            idempotency_key=name,
        ).transfer.id

    award("h1_award", h1, 100)
    award("h2_award", h2, 50)
    award("h1_penalty", h1, -5)
    redeem("h1_redeem", h1, 30)
    redeem("h2_redeem", h2, 10)
    award("h1_last", h1, 7)
    award("h2_last", h2, 3)
    wrong = ledger.post_award(
        session,
        actor=admin,
        now=utcnow(),
        household_id=h1.id,
        idempotency_key="wrong",
        points=2,
        reason="录错",
    )
    t["h1_corrected"] = wrong.transfer.id
    t["h1_correction"] = ledger.post_correction(
        session,
        actor=admin,
        now=utcnow(),
        transfer_id=wrong.transfer.id,
        reason="更正",
        idempotency_key="fix",
    ).transfer.id
    session.commit()
    assert ledger.verify_ledger(session).ok
    return History(h1.account.id, h2.account.id, t)


def _tamper(sql: str, **params) -> None:
    db.session.execute(text(sql), params)
    db.session.commit()
    db.session.expire_all()


def _assert_caught(client, runner, factory, bad_id: int) -> None:
    """verify (service, CLI and API) reports the ledger broken at exactly `bad_id`."""
    report = ledger.verify_ledger(db.session)
    assert not report.ok and report.problems
    assert report.first_bad_id == bad_id, report.problems
    db.session.rollback()

    result = runner.invoke(main, ["ledger", "verify"])
    assert result.exit_code == 1, result.output
    assert f"FAILED: first bad transfer: {bad_id}" in result.output

    r = client.get("/api/v1/ledger/verify", headers=factory.headers(factory.admin))
    assert r.status_code == 200
    assert (r.json["ok"], r.json["first_bad_id"]) == (False, bad_id)


def test_clean_history_verifies_everywhere(client, runner, factory, history):
    result = runner.invoke(main, ["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "transfers checked: 9" in result.output and "ok:" in result.output
    r = client.get("/api/v1/ledger/verify", headers=factory.headers(factory.admin))
    assert r.json == {"ok": True, "transfers_checked": 9, "first_bad_id": None, "problems": []}


@pytest.mark.parametrize(
    "column, value",
    [
        ("amount", 500),
        ("kind", "award"),
        ("reason", "改过的理由"),
        ("balance_after", 1000),
        ("idempotency_key", "award:other"),
        ("credit_account_id", "issuance"),  # points sent elsewhere than the penalty sink
    ],
)
def test_altered_row_is_named(client, runner, factory, history, column, value):
    bad = history.t["h1_penalty"]
    if value == "issuance":
        value = db.session.scalar(select(Account.id).where(Account.code == ledger.ISSUANCE_CODE))
    _tamper(f"UPDATE transfers SET {column} = :value WHERE id = :id", value=value, id=bad)
    _assert_caught(client, runner, factory, bad)


def test_altered_time_is_named(client, runner, factory, history):
    bad = history.t["h2_redeem"]
    row = db.session.get(Transfer, bad)
    earlier = row.created_at.replace(year=row.created_at.year - 1)
    db.session.rollback()
    db.session.execute(
        Transfer.__table__.update().where(Transfer.id == bad).values(created_at=earlier)
    )
    db.session.commit()
    _assert_caught(client, runner, factory, bad)


def test_deleted_middle_row_names_the_next_transfer_of_its_household(
    client, runner, factory, history
):
    # h1_redeem sits between h2's transfers in id order; its household's next is h1_last.
    _tamper("DELETE FROM transfers WHERE id = :id", id=history.t["h1_redeem"])
    _assert_caught(client, runner, factory, history.t["h1_last"])


def test_deleted_last_row_is_caught_at_the_households_new_last(client, runner, factory, history):
    # Nothing follows it, so the chain still links; the cached head, count and balance
    # of the account no longer match, at the last transfer the household still has.
    _tamper("DELETE FROM transfers WHERE id = :id", id=history.t["h2_last"])
    report = ledger.verify_ledger(db.session)
    assert any("disagree" in p for p in report.problems)
    _assert_caught(client, runner, factory, history.t["h2_redeem"])


def test_deleted_first_row_names_the_households_second(client, runner, factory, history):
    _tamper("DELETE FROM transfers WHERE id = :id", id=history.t["h2_award"])
    _assert_caught(client, runner, factory, history.t["h2_redeem"])


def _forge(history: History, *, valid_hash: bool) -> int:
    """Insert an award of 1000 to h1 after its head, as a forger with database access would."""
    account = db.session.get(Account, history.h1)
    head, seq, balance = account.head_hash, account.entry_count, account.balance
    issuance = db.session.scalar(select(Account.id).where(Account.code == ledger.ISSUANCE_CODE))
    now = utcnow()
    fields = {
        "idempotency_key": "award:forged",
        "kind": "award",
        "debit_account_id": issuance,
        "credit_account_id": history.h1,
        "amount": 1000,
        "chain_account_id": history.h1,
        "entry_seq": seq + 1,
        "balance_after": balance + 1000,
        "created_at": now,
        "reason": "伪造",
        "sale_id": None,
        "reverses_id": None,
    }
    digest = transfer_digest(head, **fields) if valid_hash else "f" * 64
    db.session.rollback()
    forged_id = db.session.execute(
        insert(Transfer.__table__)
        .values(**fields, request_hash=request_fingerprint(), prev_hash=head, hash=digest)
        .returning(Transfer.__table__.c.id)
    ).scalar_one()
    db.session.commit()
    return forged_id


def test_inserted_row_with_garbage_hash_is_named(client, runner, factory, history):
    forged = _forge(history, valid_hash=False)
    _assert_caught(client, runner, factory, forged)


def test_inserted_row_with_a_recomputed_hash_is_named(client, runner, factory, history):
    # The chain links, but the household's cached head and balance do not move with it.
    forged = _forge(history, valid_hash=True)
    _assert_caught(client, runner, factory, forged)


def test_changed_cached_balance_is_named(client, runner, factory, history):
    _tamper("UPDATE accounts SET balance = balance + 100 WHERE id = :id", id=history.h2)
    _assert_caught(client, runner, factory, history.t["h2_last"])


@pytest.mark.parametrize("column", ["earned_total", "penalty_total", "redeemed_total"])
def test_changed_cached_total_is_named(client, runner, factory, history, column):
    _tamper(f"UPDATE accounts SET {column} = {column} + 1 WHERE id = :id", id=history.h1)
    _assert_caught(client, runner, factory, history.t["h1_correction"])


def test_changed_cached_head_is_named(client, runner, factory, history):
    _tamper("UPDATE accounts SET head_hash = :h WHERE id = :id", h=GENESIS, id=history.h2)
    _assert_caught(client, runner, factory, history.t["h2_last"])


def test_canonical_time_ignores_the_offset_it_was_given_in():
    from datetime import datetime, timedelta, timezone

    at = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert canonical_time(at) == "2026-11-27T04:00:00.123456Z"

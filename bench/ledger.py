"""Benchmark of the points ledger on PostgreSQL: redemption throughput and balance read time.

It measures what the issue asks of the ledger:

* redemptions posted per second through `ledger.services.redeem_points` (one transaction
  each: the service, then `session.commit()`), with 1 thread and with 8 threads, over
  1,000 funded households picked at random, each as a ratio to the raw-SQL ceiling: the
  same conditional UPDATE and INSERT sent through psycopg 3 with no ORM, measured in the
  same run and interleaved with the ORM runs so machine noise hits both. The goal is an
  ORM/raw ratio of at least 0.5. A third, informational column ("raw+head") adds the
  second UPDATE that keeps the account's chain head, which the service also sends. The
  clerk is loaded once per session and detached, so the ORM figure is the service and its
  commit, not the reloading of the user that authentication would do per request;
* balance read time for a household with 10 transfers and one with 1,000,000, as the
  median over many reads and the big/small ratio. The goal is a ratio near 1: a balance is
  a cached column, never a sum over history.

The script drops and recreates every table of the app in the target database, so point it
at a database of its own:

    createdb -h 127.0.0.1 -U postgres ipos_bench
    .venv/bin/python bench/ledger.py            # full run, 3 to 4 minutes on 2 cores
    .venv/bin/python bench/ledger.py --quick    # smoke run, under a minute

The database URL comes from `--database-url`, else `$BENCH_DATABASE_URL`, else
postgresql://postgres@127.0.0.1:5432/ipos_bench. The full run repeats each throughput
measurement 5 times for 4 s and builds a 1,000,000-transfer history; `--quick` does 3
repeats of 1 s and a 100,000-transfer history. `--profile` afterwards runs the one-thread
ORM loop under cProfile and prints where its time goes. Figures are printed as tables and
written as JSON to bench/out/ledger.json.
"""

# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `python bench/ledger.py` puts bench/ first on sys.path, where this very file would
# shadow the `ledger` package; the repository root must win.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import re
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import psycopg
import sqlalchemy
from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from accounts.auth import Role, User, create_user
from config.app import create_app
from config.settings import normalize_database_url
from core.db import db, utcnow
from core.idempotency import request_fingerprint
from inventory.services import create_shop
from ledger.chain import GENESIS, transfer_digest
from ledger.models import Account, AccountKind, Village
from ledger.services import (
    ISSUANCE_CODE,
    MAX_AWARD_POINTS,
    create_household,
    create_village,
    ensure_system_accounts,
    get_household,
    household_statement,
    post_award,
    redeem_points,
    shop_account_code,
)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ipos_bench"
SHOP = "BENCH"
VILLAGE = "BENCHV"
OUT = ROOT / "bench" / "out" / "ledger.json"
# The goal says "do not grow with history"; allow timer and cache noise, not a trend.
FLAT_READ_LIMIT = 1.5


@dataclass(frozen=True)
class Plan:
    households: int
    funding: int
    duration: float
    repeats: int
    warmup: float
    threads: tuple[int, ...]
    small_history: int
    big_history: int
    reads: int


FULL = Plan(
    households=1_000,
    funding=MAX_AWARD_POINTS,
    duration=4.0,
    repeats=5,
    warmup=1.0,
    threads=(1, 8),
    small_history=10,
    big_history=1_000_000,
    reads=2_000,
)
QUICK = Plan(
    households=1_000,
    funding=MAX_AWARD_POINTS,
    duration=1.0,
    repeats=3,
    warmup=0.3,
    threads=(1, 8),
    small_history=10,
    big_history=100_000,
    reads=500,
)


@dataclass(frozen=True)
class Fixture:
    clerk_id: int
    admin_id: int
    shop_account_id: int
    issuance_account_id: int
    floor: int
    # household id -> its account id, for the raw path, which never looks households up.
    accounts: dict[int, int]


# --- database -----------------------------------------------------------------------


def psycopg_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def check_reachable(url: str) -> str:
    """The server's version, or exit with a message saying how to get a database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        sys.exit(f"bench/ledger.py measures PostgreSQL only, not {parsed.get_backend_name()}")
    try:
        with psycopg.connect(psycopg_conninfo(url), connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.OperationalError as exc:
        shown = parsed.render_as_string(hide_password=True)
        print(
            f"\nERROR: cannot reach the benchmark database {shown}\n  {exc}\n"
            "Start PostgreSQL and create the database, for example:\n"
            f"  createdb -h {parsed.host or '127.0.0.1'} -U {parsed.username or 'postgres'} "
            f"{parsed.database or 'ipos_bench'}\n"
            "or give another one with --database-url or BENCH_DATABASE_URL.",
            file=sys.stderr,
        )
        sys.exit(2)
    return str(row[0]) if row else "?"


def reset_schema(url: str, home: str) -> None:
    # The app factory imports every model, so the metadata holds every table it creates.
    create_app(
        {
            "TESTING": True,
            "HOME": home,
            "SECRET_KEY": "bench-secret",
            "CARD_SIGNING_KEY": "bench-card-key",
            "SQLALCHEMY_DATABASE_URI": url,
        }
    )
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.metadata.create_all(conn)
    engine.dispose()


def build_fixture(engine: Engine, plan: Plan) -> tuple[Fixture, int, int]:
    """Users, a village, a shop and funded households, all through the services.

    Returns the fixture and the ids of two households outside the random pool, kept
    for the read benchmark so redemptions never touch their histories.
    """
    with Session(engine) as session:
        ensure_system_accounts(session)
        admin = create_user(session, username="bench-admin", password="bench-pass", role="admin")
        clerk = create_user(
            session,
            username="bench-clerk",
            password="bench-pass",
            role=str(Role.CLERK),
            shop_code=SHOP,
        )
        create_village(session, actor=admin, now=utcnow(), code=VILLAGE, name="基准村")
        create_shop(session, actor=admin, now=utcnow(), code=SHOP, name="基准诚信超市")
        session.commit()

        household_ids = []
        for i in range(plan.households):
            household = create_household(
                session, actor=admin, now=utcnow(), village_code=VILLAGE, head_name=f"户主{i}"
            )
            post_award(
                session,
                actor=admin,
                now=utcnow(),
                household_id=household.id,
                idempotency_key=f"fund-{household.id}",
                points=plan.funding,
                reason="bench funding",
            )
            household_ids.append(household.id)
            if i % 100 == 99:
                session.commit()
        readers = []
        for label in ("small", "big"):
            household = create_household(
                session, actor=admin, now=utcnow(), village_code=VILLAGE, head_name=label
            )
            readers.append(household.id)
        for i in range(plan.small_history):
            post_award(
                session,
                actor=admin,
                now=utcnow(),
                household_id=readers[0],
                idempotency_key=f"small-{i}",
                points=1,
                reason="bench history",
            )
        # The shop's redemptions account is created by its first redemption; create it
        # now so neither path pays for that inside a measurement.
        shop_account = Account(kind=AccountKind.SHOP, code=shop_account_code(SHOP))
        session.add(shop_account)
        session.commit()

        rows = session.execute(
            select(Account.household_id, Account.id).where(Account.household_id.in_(household_ids))
        )
        accounts = {household_id: account_id for household_id, account_id in rows}
        floor = session.scalar(select(Village.redemption_floor).where(Village.code == VILLAGE))
        issuance = session.scalar(select(Account.id).where(Account.code == ISSUANCE_CODE))
        fixture = Fixture(
            clerk_id=clerk.id,
            admin_id=admin.id,
            shop_account_id=shop_account.id,
            issuance_account_id=issuance or 0,
            floor=floor or 0,
            accounts=accounts,
        )
    return fixture, readers[0], readers[1]


def build_big_history(engine: Engine, fixture: Fixture, household_id: int, n: int) -> None:
    """Give one household `n` one-point awards in a single INSERT ... SELECT.

    Only the read benchmark uses this household. Its rows have the right sides, sequence
    numbers and running balances, and each prev_hash links to the previous row's hash, but
    the hashes are md5 filler, not `transfer_digest` values: `verify` would reject them.
    Real digests would need a Python round trip per row, for values no read here looks at.
    """
    with Session(engine) as session:
        account_id = session.scalar(select(Account.id).where(Account.household_id == household_id))
    filler = "md5('h' || CAST({g} AS text)) || md5('H' || CAST({g} AS text))"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO transfers (idempotency_key, request_hash, kind, debit_account_id,"
                " credit_account_id, amount, chain_account_id, entry_seq, balance_after, reason,"
                " actor_id, created_at, prev_hash, hash)"
                " SELECT 'award:bench-history-' || CAST(g AS text),"
                " md5('r' || CAST(g AS text)) || md5('R' || CAST(g AS text)),"
                " 'award', :issuance, :account, 1, :account, g, g, 'bench history', :actor,"
                " CAST(:t0 AS timestamptz) + g * interval '1 millisecond',"
                f" CASE WHEN g = 1 THEN :genesis ELSE {filler.format(g='g - 1')} END,"
                f" {filler.format(g='g')}"
                " FROM generate_series(1, CAST(:n AS bigint)) AS g"
            ),
            {
                "issuance": fixture.issuance_account_id,
                "account": account_id,
                "actor": fixture.admin_id,
                "t0": utcnow() - timedelta(milliseconds=n + 1),
                "genesis": GENESIS,
                "n": n,
            },
        )
        conn.execute(
            text(
                "UPDATE accounts SET balance = :n, earned_total = :n, entry_count = :n,"
                f" head_hash = {filler.format(g='CAST(:n AS bigint)')} WHERE id = :account"
            ),
            {"n": n, "account": account_id},
        )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE transfers"))
        conn.execute(text("ANALYZE accounts"))
        conn.commit()


# --- throughput ---------------------------------------------------------------------


@dataclass
class Run:
    variant: str
    threads: int
    redemptions: int
    seconds: float
    errors: int

    @property
    def per_second(self) -> float:
        return self.redemptions / self.seconds


Worker = Callable[[int, random.Random, str, Callable[[], float]], tuple[int, int]]


def run_threads(
    threads: int, duration: float, make_worker: Callable[[], Worker], variant: str
) -> Run:
    """Start `threads` workers together, let them post until the deadline, count commits.

    Each worker opens its own connection before the start line, so connecting is not
    timed; the rate is all commits over the time until the last worker finished.
    """
    tag = uuid.uuid4().hex[:12]
    start: list[float] = []
    barrier = threading.Barrier(threads, action=lambda: start.append(time.perf_counter()))
    results: list[tuple[int, int, float]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def body(index: int) -> None:
        try:
            worker = make_worker()

            def wait_for_start() -> float:
                barrier.wait()
                return start[0] + duration

            done, errors = worker(
                index, random.Random(f"{tag}-{index}"), f"{tag}-{index}", wait_for_start
            )
            with lock:
                results.append((done, errors, time.perf_counter()))
        except BaseException as exc:
            barrier.abort()
            with lock:
                failures.append(exc)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failures:
        # The other workers' broken barrier is a consequence; raise the cause.
        raise next(
            (f for f in failures if not isinstance(f, threading.BrokenBarrierError)), failures[0]
        )
    finished = max(r[2] for r in results)
    return Run(
        variant=variant,
        threads=threads,
        redemptions=sum(r[0] for r in results),
        seconds=finished - start[0],
        errors=sum(r[1] for r in results),
    )


def load_actor(session: Session, user_id: int) -> User:
    """The clerk, loaded in `session` and then detached from it.

    Attached, the user would expire at every commit and `may_sell_at` would reload it:
    one more SELECT per redemption that belongs to authentication, not to the ledger, and
    that the raw ceiling does not pay either. Detached, it keeps the loaded columns.
    """
    actor = session.get(User, user_id)
    assert actor is not None
    session.expunge(actor)
    session.commit()
    return actor


def post_one(session: Session, actor: User, household_id: int, key: str) -> None:
    """One redemption as the counter posts it: the service, then the commit."""
    redeem_points(
        session,
        actor=actor,
        now=utcnow(),
        household_id=household_id,
        shop_code=SHOP,
        points=1,
        idempotency_key=key,
    )
    session.commit()


def orm_worker(engine: Engine, fixture: Fixture, household_ids: list[int]) -> Worker:
    def work(
        index: int, rng: random.Random, prefix: str, wait_for_start: Callable[[], float]
    ) -> tuple[int, int]:
        with Session(engine) as session:
            actor = load_actor(session, fixture.clerk_id)
            deadline = wait_for_start()
            done = errors = 0
            while time.perf_counter() < deadline:
                try:
                    post_one(session, actor, rng.choice(household_ids), f"{prefix}-{done + errors}")
                    done += 1
                except Exception:
                    session.rollback()
                    errors += 1
                    if errors > 10:
                        raise
        return done, errors

    return work


RAW_UPDATE = (
    "UPDATE accounts SET balance = balance - %(amount)s, entry_count = entry_count + 1,"
    " redeemed_total = redeemed_total + %(amount)s"
    " WHERE id = %(account)s AND balance - %(amount)s >= %(floor)s"
    " RETURNING balance, entry_count, head_hash"
)
RAW_INSERT = (
    "INSERT INTO transfers (idempotency_key, request_hash, kind, debit_account_id,"
    " credit_account_id, amount, chain_account_id, entry_seq, balance_after, reason, rule_id,"
    " persons, sale_id, reverses_id, actor_id, created_at, prev_hash, hash)"
    " VALUES (%(key)s, %(fingerprint)s, 'redemption', %(account)s, %(shop)s, %(amount)s,"
    " %(account)s, %(seq)s, %(balance)s, NULL, NULL, NULL, NULL, NULL, %(actor)s, %(now)s,"
    " %(prev)s, %(hash)s) RETURNING id"
)
RAW_HEAD = "UPDATE accounts SET head_hash = %(hash)s WHERE id = %(account)s"


def raw_worker(url: str, fixture: Fixture, household_ids: list[int], *, head: bool) -> Worker:
    """The ceiling: the service's writes as bare SQL, with its Python hashing kept.

    Fingerprint and digest are computed with the ledger's own functions, so the gap to
    the ORM is what the ORM and the service's extra reads cost, not hashing. Without
    `head` the account's head_hash is left stale, as the issue's two-statement ceiling
    implies; that breaks the chain, which no one verifies here.
    """

    def work(
        index: int, rng: random.Random, prefix: str, wait_for_start: Callable[[], float]
    ) -> tuple[int, int]:
        with psycopg.connect(psycopg_conninfo(url)) as conn, conn.cursor() as cur:
            deadline = wait_for_start()
            done = errors = 0
            while time.perf_counter() < deadline:
                household_id = rng.choice(household_ids)
                account = fixture.accounts[household_id]
                key = f"redemption:{prefix}-{done + errors}"
                fingerprint = request_fingerprint(
                    household_id=household_id, shop_code=SHOP, points=1, sale_id=None
                )
                now = utcnow()
                cur.execute(RAW_UPDATE, {"amount": 1, "account": account, "floor": fixture.floor})
                row = cur.fetchone()
                if row is None:
                    conn.rollback()
                    errors += 1
                    continue
                balance, seq, prev = row
                digest = transfer_digest(
                    prev,
                    idempotency_key=key,
                    kind="redemption",
                    debit_account_id=account,
                    credit_account_id=fixture.shop_account_id,
                    amount=1,
                    chain_account_id=account,
                    entry_seq=seq,
                    balance_after=balance,
                    created_at=now,
                    reason=None,
                    sale_id=None,
                    reverses_id=None,
                )
                cur.execute(
                    RAW_INSERT,
                    {
                        "key": key,
                        "fingerprint": fingerprint,
                        "account": account,
                        "shop": fixture.shop_account_id,
                        "amount": 1,
                        "seq": seq,
                        "balance": balance,
                        "actor": fixture.clerk_id,
                        "now": now,
                        "prev": prev,
                        "hash": digest,
                    },
                )
                cur.fetchone()
                if head:
                    cur.execute(RAW_HEAD, {"hash": digest, "account": account})
                conn.commit()
                done += 1
        return done, errors

    return work


VARIANTS = ("orm", "raw", "raw+head")


def measure_throughput(
    engine: Engine, url: str, fixture: Fixture, plan: Plan, log: Callable[[str], None]
) -> list[Run]:
    household_ids = sorted(fixture.accounts)
    makers: dict[str, Callable[[], Worker]] = {
        "orm": lambda: orm_worker(engine, fixture, household_ids),
        "raw": lambda: raw_worker(url, fixture, household_ids, head=False),
        "raw+head": lambda: raw_worker(url, fixture, household_ids, head=True),
    }
    # Warm statement caches, prepared statements and the buffer cache before timing.
    for threads in plan.threads:
        for variant in VARIANTS:
            run_threads(threads, plan.warmup, makers[variant], variant)
    runs = []
    for repeat in range(plan.repeats):
        for threads in plan.threads:
            # Rotate the order so no variant always runs first, right after a thread change.
            order = VARIANTS[repeat % 3 :] + VARIANTS[: repeat % 3]
            for variant in order:
                run = run_threads(threads, plan.duration, makers[variant], variant)
                runs.append(run)
                log(
                    f"  repeat {repeat + 1}/{plan.repeats} threads={threads} {variant:8}"
                    f" {run.per_second:8.0f}/s ({run.redemptions} in {run.seconds:.2f} s"
                    f"{f', {run.errors} errors' if run.errors else ''})"
                )
    return runs


def count_orm_statements(engine: Engine, fixture: Fixture, n: int = 200) -> dict[str, Any]:
    """What one ORM redemption sends, by statement shape, averaged over `n` of them."""
    shapes: Counter[str] = Counter()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        verb = words[0].upper() if words else "?"
        table = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", statement, re.IGNORECASE)
        shapes[f"{verb} {table.group(1) if table else ''}".strip()] += 1

    def on_commit(_conn: Any) -> None:
        shapes["COMMIT"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        with Session(engine) as session:
            actor = load_actor(session, fixture.clerk_id)
            shapes.clear()
            rng = random.Random(7)
            household_ids = sorted(fixture.accounts)
            tag = uuid.uuid4().hex[:12]
            for i in range(n):
                post_one(session, actor, rng.choice(household_ids), f"count-{tag}-{i}")
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)
    # A Counter keeps first-seen order: the order the service sends its statements.
    per = {shape: count / n for shape, count in shapes.items()}
    return {"per_redemption": per, "statements": sum(v for k, v in per.items() if k != "COMMIT")}


def profile_orm(engine: Engine, fixture: Fixture, seconds: float) -> str:
    """cProfile of the one-thread ORM loop: the service's steps first, then the hot spots."""
    household_ids = sorted(fixture.accounts)
    profiler = cProfile.Profile()
    with Session(engine) as session:
        actor = load_actor(session, fixture.clerk_id)
        rng = random.Random(11)
        tag = uuid.uuid4().hex[:12]
        deadline = time.perf_counter() + seconds
        done = 0
        profiler.enable()
        while time.perf_counter() < deadline:
            post_one(session, actor, rng.choice(household_ids), f"profile-{tag}-{done}")
            done += 1
        profiler.disable()
    out = io.StringIO()
    out.write(f"cProfile of {done} ORM redemptions, one thread, {seconds:g} s\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative")
    stats.print_callees(r"\(post_one\)|\(redeem_points\)|services.py:\d+\(_post\)")
    stats.print_stats(30)
    stats.sort_stats("tottime").print_stats(20)
    return out.getvalue()


# --- balance reads ------------------------------------------------------------------


def measure_reads(engine: Engine, small: int, big: int, reads: int) -> dict[str, Any]:
    """Median microseconds per read for each way the app reads a balance.

    Small and big reads alternate, so drift in the machine's speed hits both alike.
    """
    probes: dict[str, Callable[[Session, int], Any]] = {
        "select(Account.balance)": lambda s, h: s.scalar(
            select(Account.balance).where(Account.household_id == h)
        ),
        "get_household().account.balance": lambda s, h: get_household(s, h).account.balance,
        # As many rows as the small household has, so both pages build the same objects.
        "household_statement(limit=10)": lambda s, h: household_statement(s, h, limit=10),
    }
    results: dict[str, Any] = {}
    with Session(engine) as session:
        balances = {
            h: session.scalar(select(Account.balance).where(Account.household_id == h))
            for h in (small, big)
        }
        histories = {
            h: session.scalar(select(Account.entry_count).where(Account.household_id == h))
            for h in (small, big)
        }
        for name, probe in probes.items():
            timings: dict[int, list[int]] = {small: [], big: []}
            for h in (small, big):
                for _ in range(20):
                    session.expunge_all()
                    probe(session, h)
            for i in range(reads):
                for h in (small, big) if i % 2 == 0 else (big, small):
                    # A fresh identity map, or get_household would answer from memory.
                    session.expunge_all()
                    t0 = time.perf_counter_ns()
                    probe(session, h)
                    timings[h].append(time.perf_counter_ns() - t0)
                if i % 100 == 99:
                    session.rollback()
            small_us = statistics.median(timings[small]) / 1000
            big_us = statistics.median(timings[big]) / 1000
            results[name] = {"small_us": small_us, "big_us": big_us, "ratio": big_us / small_us}
    return {
        "small": {"household_id": small, "transfers": histories[small], "balance": balances[small]},
        "big": {"household_id": big, "transfers": histories[big], "balance": balances[big]},
        "reads": reads,
        "probes": results,
    }


# --- report -------------------------------------------------------------------------


def summarize(runs: list[Run], plan: Plan) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for threads in plan.threads:
        row: dict[str, Any] = {}
        for variant in VARIANTS:
            rates = [r.per_second for r in runs if r.threads == threads and r.variant == variant]
            row[variant] = {
                "median_per_s": statistics.median(rates),
                "runs_per_s": [round(x, 1) for x in rates],
                "errors": sum(
                    r.errors for r in runs if r.threads == threads and r.variant == variant
                ),
            }
        row["ratio_orm_raw"] = row["orm"]["median_per_s"] / row["raw"]["median_per_s"]
        row["ratio_orm_raw_head"] = row["orm"]["median_per_s"] / row["raw+head"]["median_per_s"]
        row["goal_met"] = row["ratio_orm_raw"] >= 0.5
        summary[str(threads)] = row
    return summary


def print_tables(result: dict[str, Any]) -> None:
    plan = result["plan"]
    env = result["environment"]
    print()
    print(
        f"PostgreSQL {env['postgresql']}, Python {env['python']}, SQLAlchemy {env['sqlalchemy']},"
        f" psycopg {env['psycopg']}, {env['cpus']} CPUs, load average before/after"
        f" {env['loadavg_before'][0]:.1f}/{env['loadavg_after'][0]:.1f}"
    )
    print(
        f"Redemptions per second: median of {plan['repeats']} runs of {plan['duration']:g} s,"
        f" {plan['households']:,} households, one transaction each"
    )
    header = f"{'threads':>7}  {'ORM service':>11}  {'raw ceiling':>11}  {'ORM/raw':>7}"
    header += f"  {'goal >=0.5':>10}  {'raw+head':>9}  {'ORM/raw+head':>12}"
    print(header)
    print("-" * len(header))
    for threads, row in result["throughput"].items():
        print(
            f"{threads:>7}  {row['orm']['median_per_s']:>11.0f}"
            f"  {row['raw']['median_per_s']:>11.0f}"
            f"  {row['ratio_orm_raw']:>7.2f}  {'met' if row['goal_met'] else 'MISSED':>10}"
            f"  {row['raw+head']['median_per_s']:>9.0f}  {row['ratio_orm_raw_head']:>12.2f}"
        )
    stmts = result["orm_statements"]
    print()
    print(
        f"SQL statements per ORM redemption: {stmts['statements']:g}"
        " (raw ceiling: 2, raw+head: 3; each path also sends BEGIN and COMMIT)"
    )
    for shape, count in stmts["per_redemption"].items():
        print(f"  {count:5.2f}  {shape}")
    reads = result["reads"]
    print()
    print(f"Balance read: median microseconds per read over {reads['reads']:,} reads each")
    small_n = f"{reads['small']['transfers']:,} transfers"
    big_n = f"{reads['big']['transfers']:,} transfers"
    header = f"{'read':<34}  {small_n:>16}  {big_n:>20}  {'big/small':>9}"
    print(header)
    print("-" * len(header))
    for name, row in reads["probes"].items():
        print(f"{name:<34}  {row['small_us']:>16.1f}  {row['big_us']:>20.1f}  {row['ratio']:>9.2f}")
    flat = result["goals"]["balance_reads_flat"]
    print(
        f"goal (balance reads do not grow with history, big/small <= {FLAT_READ_LIMIT}):"
        f" {'met' if flat else 'MISSED'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
        help="PostgreSQL URL of a database the benchmark may wipe (default: %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run, under a minute")
    parser.add_argument("--profile", action="store_true", help="then cProfile the ORM loop")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON output (default: %(default)s)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    url = normalize_database_url(args.database_url)

    def log(message: str) -> None:
        print(message, flush=True)

    server_version = check_reachable(url)
    load_before = os.getloadavg()
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        # Interleaving spreads other work's noise over both paths, but not evenly.
        log(
            f"WARNING: the machine is busy (load {load_before[0]:.1f} on {os.cpu_count()} CPUs);"
            " the figures will be noisy"
        )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ipos-bench-") as home:
        log(f"resetting schema in {make_url(url).render_as_string(hide_password=True)}")
        reset_schema(url, home)
        engine = create_engine(url, pool_size=max(plan.threads) + 2, max_overflow=0)
        try:
            log(f"creating {plan.households:,} funded households through the services")
            t0 = time.perf_counter()
            fixture, small, big = build_fixture(engine, plan)
            log(f"  done in {time.perf_counter() - t0:.1f} s")
            log("counting SQL statements per ORM redemption")
            statements = count_orm_statements(engine, fixture)
            log("measuring redemption throughput (ORM and raw runs interleaved)")
            runs = measure_throughput(engine, url, fixture, plan, log)
            log(f"bulk-inserting a {plan.big_history:,}-transfer history")
            t0 = time.perf_counter()
            build_big_history(engine, fixture, big, plan.big_history)
            log(f"  done in {time.perf_counter() - t0:.1f} s")
            log("timing balance reads")
            reads = measure_reads(engine, small, big, plan.reads)
            profile = profile_orm(engine, fixture, plan.duration) if args.profile else None
        finally:
            engine.dispose()

    # A read that answers the wrong number would make its timing meaningless.
    expected = {"small": plan.small_history, "big": plan.big_history}
    for label, count in expected.items():
        if reads[label]["balance"] != count or reads[label]["transfers"] != count:
            sys.exit(f"setup error: the {label} household should hold {count} points: {reads}")
    throughput = summarize(runs, plan)
    balance_ratio = reads["probes"]["select(Account.balance)"]["ratio"]
    result: dict[str, Any] = {
        "benchmark": "bench/ledger.py",
        "quick": args.quick,
        "plan": asdict(plan),
        "environment": {
            "database": make_url(url).render_as_string(hide_password=True),
            "postgresql": server_version,
            "python": platform.python_version(),
            "sqlalchemy": sqlalchemy.__version__,
            "psycopg": psycopg.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "throughput": throughput,
        "orm_statements": statements,
        "reads": reads,
        "goals": {
            "orm_at_least_half_raw": {t: row["goal_met"] for t, row in throughput.items()},
            "balance_reads_flat": all(
                row["ratio"] <= FLAT_READ_LIMIT
                for name, row in reads["probes"].items()
                if name != "household_statement(limit=10)"
            ),
            "balance_read_ratio": balance_ratio,
        },
        "runs": [asdict(r) | {"per_second": r.per_second} for r in runs],
        "seconds": time.perf_counter() - began,
    }
    print_tables(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nfigures written to {args.out}; total {result['seconds']:.0f} s")
    if profile:
        profile_path = args.out.with_name(args.out.stem + "_profile.txt")
        profile_path.write_text(profile)
        print()
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())

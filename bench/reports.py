"""Benchmark of the county's reports on PostgreSQL: red list, ten-star list, dashboard.

It builds a county the size of Changyang's (130,000 households in 154 villages, 13 shops,
200 goods, 10 categories of 3 rules each) with 10,000,000 transfers spread over the last
24 months, every redemption with its sale and two sale lines, about one award or penalty
in 250 corrected, and household totals that agree with the transfers. Rows are made in
the database by bulk INSERT ... SELECT over generate_series (secondary indexes and
foreign-key checks off while loading, indexes built afterwards, then VACUUM ANALYZE),
which takes a few minutes instead of the hours 10 million service calls would.

It then times, as the median of 5 runs after one warm-up, the service calls the pages
make for the last full month:

* a village's red list (`county.services.red_list`, top 10), and with it the black list
  that the same notice prints;
* the county's ten-star list (`ten_star_list`, county-wide);
* the dashboard (`dashboard_figures`: 12 months of awards, penalties and redemptions,
  per shop per day, top goods, stock, households that never redeemed).

The goal is each under 1 second.

    createdb -h 127.0.0.1 -U postgres ipos_bench_reports
    .venv/bin/python bench/reports.py             # full size: about 10 to 15 minutes
    .venv/bin/python bench/reports.py --quick     # 13,000 households, 1,000,000 transfers
    .venv/bin/python bench/reports.py --reuse     # time again without rebuilding

The database URL comes from `--database-url`, else `$BENCH_DATABASE_URL`, else
postgresql://postgres@127.0.0.1:5432/ipos_bench_reports. The script drops and recreates
every table of the app there. `--explain` prints each query plan of the timed calls.
Figures are printed and written as JSON to bench/out/reports.json.
"""

# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, event, text

from accounts.auth import create_user
from config.app import create_app
from config.settings import normalize_database_url
from core.db import db
from county import services as county
from ledger import services as ledger
from ledger.models import Transfer

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ipos_bench_reports"
TZ = ZoneInfo("Asia/Shanghai")
VILLAGES = 154
SHOPS = 13
PRODUCTS = 200
CATEGORIES = [
    ("ECOLOGY", "生态环保"),
    ("WELFARE", "公益事业"),
    ("CUSTOMS", "文明乡风"),
    ("NEIGHBOUR", "邻里互助"),
    ("SAFETY", "平安建设"),
    ("FILIAL", "孝老爱亲"),
    ("LAW", "遵纪守法"),
    ("HONESTY", "诚实守信"),
    ("INDUSTRY", "勤劳致富"),
    ("HYGIENE", "卫生整洁"),
]
ISSUANCE_ID, PENALTY_ID, FIRST_SHOP_ACCOUNT, FIRST_HOUSEHOLD_ACCOUNT = 1, 2, 3, 1001


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def make_app(url: str, home: str) -> Any:
    return create_app(
        {
            "TESTING": True,
            "HOME": home,
            "SECRET_KEY": "bench-secret",
            "CARD_SIGNING_KEY": "bench-card-key",
            "SQLALCHEMY_DATABASE_URI": url,
            "TIMEZONE": "Asia/Shanghai",
        }
    )


def build(url: str, households: int, transfers: int, months: int) -> dict[str, Any]:
    """The whole county, in the database, by bulk inserts."""
    # The app factory imports every model, so the metadata holds every table it creates.
    make_app(url, tempfile.mkdtemp())
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.metadata.create_all(conn)
    now = datetime.now(UTC)
    local_now = now.astimezone(TZ)
    first_month = datetime(local_now.year, local_now.month, 1, tzinfo=TZ)
    for _ in range(months - 1):
        first_month = (first_month - timedelta(days=1)).replace(day=1)
    start = first_month.astimezone(UTC)
    span = (now - start).total_seconds()
    params = {
        "H": households,
        "T": transfers,
        "V": VILLAGES,
        "S": SHOPS,
        "P": PRODUCTS,
        "start": start,
        "span": span,
        "iss": ISSUANCE_ID,
        "pen": PENALTY_ID,
        "shop0": FIRST_SHOP_ACCOUNT,
        "hh0": FIRST_HOUSEHOLD_ACCOUNT,
    }
    timings: dict[str, float] = {}

    def step(name: str, sql: str) -> None:
        began = time.perf_counter()
        with engine.begin() as conn:
            # The loader is trusted: foreign-key triggers off while the rows go in.
            conn.execute(text("SET session_replication_role = replica"))
            conn.execute(text("SET maintenance_work_mem = '512MB'"))
            for statement in sql.split(";"):
                if statement.strip():
                    used = {k: v for k, v in params.items() if f":{k}" in statement}
                    conn.execute(text(statement), used)
        timings[name] = round(time.perf_counter() - began, 1)
        log(f"{name}: {timings[name]} s")

    # Users, categories, thresholds and rules through the services, as an office would.
    with tempfile.TemporaryDirectory() as home:
        app = make_app(url, home)
        with app.app_context():
            admin = create_user(db.session, username="admin", password="bench-pass", role="admin")
            clerk = create_user(
                db.session, username="clerk", password="bench-pass", role="clerk", shop_code="S01"
            )
            for position, (code, name) in enumerate(CATEGORIES, start=1):
                county.create_category(
                    db.session, actor=admin, now=now, code=code, name=name, position=position
                )
                county.set_threshold(
                    db.session,
                    actor=admin,
                    now=now,
                    category_code=code,
                    period_kind="month",
                    points=4,
                )
            db.session.commit()
            params["clerk"] = clerk.id
    # Thirty rules: three a category, the third of each a penalty.
    step(
        "villages, shops, goods, stock, rules",
        """
        INSERT INTO villages (id, code, name, redemption_floor, created_at)
        SELECT g, 'V' || lpad(g::text, 3, '0'), '第' || g || '村', 0, :start
        FROM generate_series(1, :V) g;
        INSERT INTO shops (id, code, name, allow_negative_stock, created_at)
        SELECT g, 'S' || lpad(g::text, 2, '0'), '第' || g || '诚信超市', false, :start
        FROM generate_series(1, :S) g;
        INSERT INTO products (id, sku, name, unit, points_price, category, active, created_at)
        SELECT g, 'P' || lpad(g::text, 4, '0'), '商品' || g, '件', 5 + g % 120, '日用', true,
               :start
        FROM generate_series(1, :P) g;
        INSERT INTO stock_levels (shop_id, product_id, on_hand, reorder_level)
        SELECT s, p, (s * 7 + p * 13) % 60, CASE WHEN p % 4 = 0 THEN 10 ELSE 0 END
        FROM generate_series(1, :S) s, generate_series(1, :P) p;
        INSERT INTO point_rules (id, code, title, points, per, village_id, active, created_at,
                                 category_id)
        SELECT g, 'R' || g, '规则' || g, CASE WHEN g % 3 = 0 THEN -5 ELSE 1 + g % 4 END,
               'household', NULL, true, :start, c.id
        FROM generate_series(1, 30) g
        JOIN rule_categories c ON c.position = (g - 1) / 3 + 1;
        INSERT INTO accounts (id, kind, code, household_id, balance, earned_total,
                              penalty_total, redeemed_total, entry_count, head_hash, created_at)
        VALUES (:iss, 'issuance', 'issuance', NULL, 0, 0, 0, 0, 0, repeat('0', 64), :start),
               (:pen, 'penalty', 'penalty', NULL, 0, 0, 0, 0, 0, repeat('0', 64), :start);
        INSERT INTO accounts (id, kind, code, household_id, balance, earned_total,
                              penalty_total, redeemed_total, entry_count, head_hash, created_at)
        SELECT :shop0 + g - 1, 'shop', 'shop:S' || lpad(g::text, 2, '0'), NULL, 0, 0, 0, 0, 0,
               repeat('0', 64), :start
        FROM generate_series(1, :S) g;
        """,
    )
    step(
        "households and accounts",
        """
        INSERT INTO households (id, village_id, head_name, address, status, created_at)
        SELECT g, 1 + g % :V, '户主' || g, NULL, 'active', :start
        FROM generate_series(1, :H) g;
        INSERT INTO accounts (id, kind, code, household_id, balance, earned_total,
                              penalty_total, redeemed_total, entry_count, head_hash, created_at)
        SELECT :hh0 + g - 1, 'household', 'household:' || g, g, 0, 0, 0, 0, 0,
               repeat('0', 64), :start
        FROM generate_series(1, :H) g;
        """,
    )
    # Indexes and unique constraints are built once after the load, not row by row.
    with engine.begin() as conn:
        for index in Transfer.__table__.indexes:
            index.drop(conn)
        conn.execute(text("ALTER TABLE transfers DROP CONSTRAINT uq_transfers_idempotency_key"))
        conn.execute(text("ALTER TABLE transfers DROP CONSTRAINT uq_transfers_reverses_id"))
    step(
        "transfers",
        """
        INSERT INTO transfers (id, idempotency_key, request_hash, kind, debit_account_id,
            credit_account_id, amount, chain_account_id, entry_seq, balance_after, reason,
            rule_id, persons, sale_id, reverses_id, actor_id, created_at, prev_hash, hash)
        SELECT g, 'bench:' || g, md5(g::text) || md5(r2::text),
            k,
            CASE k WHEN 'award' THEN :iss WHEN 'refund' THEN shop ELSE hh END,
            CASE k WHEN 'penalty' THEN :pen WHEN 'redemption' THEN shop ELSE hh END,
            CASE k WHEN 'award' THEN 1 + (g % 4) WHEN 'penalty' THEN 5
                   WHEN 'redemption' THEN 5 + (g % 146) ELSE 1 + g % 10 END,
            hh, g, 0,
            CASE k WHEN 'redemption' THEN 'S-' || g ELSE '规则说明' END,
            CASE k WHEN 'award' THEN 1 + 3 * (g % 10) + (g / 10) % 2
                   WHEN 'penalty' THEN 3 + 3 * (g % 10) END,
            NULL,
            CASE WHEN k IN ('redemption', 'refund') THEN g END,
            NULL, NULL,
            :start + make_interval(secs => :span * g::float8 / :T),
            md5((g - 1)::text) || md5(r2::text), md5(g::text) || md5((r2 + 1)::text)
        FROM (
            SELECT g, r2,
                CASE WHEN r1 < 0.56 THEN 'award' WHEN r1 < 0.61 THEN 'penalty'
                     WHEN r1 < 0.995 THEN 'redemption' ELSE 'refund' END AS k,
                :hh0 + floor(r2 * :H)::int AS hh,
                :shop0 + (g % :S) AS shop
            FROM (SELECT g, random() AS r1, random() AS r2 FROM generate_series(1, :T) g) x
        ) y;
        """,
    )
    step(
        "corrections (one award or penalty in 250)",
        """
        INSERT INTO transfers (id, idempotency_key, request_hash, kind, debit_account_id,
            credit_account_id, amount, chain_account_id, entry_seq, balance_after, reason,
            rule_id, persons, sale_id, reverses_id, actor_id, created_at, prev_hash, hash)
        SELECT :T + row_number() OVER (ORDER BY t.id), 'bench-fix:' || t.id, t.request_hash,
            'correction', t.credit_account_id, t.debit_account_id, t.amount,
            t.chain_account_id, 0, 0, '录入错误', NULL, NULL, NULL, t.id, NULL,
            t.created_at + interval '2 days', t.prev_hash, t.hash
        FROM transfers t
        WHERE t.kind IN ('award', 'penalty') AND t.id % 250 = 0
          AND t.created_at + interval '2 days' < now();
        """,
    )
    step(
        "transfer indexes",
        "ALTER TABLE transfers ADD CONSTRAINT uq_transfers_idempotency_key "
        "UNIQUE (idempotency_key);"
        "ALTER TABLE transfers ADD CONSTRAINT uq_transfers_reverses_id UNIQUE (reverses_id);",
    )
    with engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        for index in Transfer.__table__.indexes:
            began = time.perf_counter()
            index.create(conn)
            log(f"index {index.name}: {time.perf_counter() - began:.1f} s")
    step(
        "sales and sale lines for every redemption",
        """
        INSERT INTO sales (id, shop_id, shop_code, receipt_no, business_day, seq, household_id,
            card_id, total_points, balance_after, status, idempotency_key, request_hash,
            clerk_id, created_at)
        SELECT t.id, t.credit_account_id - :shop0 + 1,
            'S' || lpad((t.credit_account_id - :shop0 + 1)::text, 2, '0'), 'B-' || t.id,
            (t.created_at AT TIME ZONE 'Asia/Shanghai')::date, t.id,
            t.chain_account_id - :hh0 + 1, NULL, t.amount, 0, 'completed', 'bench-sale:' || t.id,
            '', :clerk, t.created_at
        FROM transfers t WHERE t.kind = 'redemption';
        INSERT INTO sale_lines (sale_id, position, product_id, sku, name, qty, points_each,
                                points)
        SELECT s.id, n, p, 'P' || lpad(p::text, 4, '0'), '商品' || p, 1, pts, pts
        FROM sales s,
        LATERAL (VALUES (0, 1 + s.id % :P, s.total_points - s.total_points / 3),
                        (1, 1 + (s.id / 7) % :P, s.total_points / 3)) AS l(n, p, pts);
        """,
    )
    step(
        "household totals from the transfers",
        """
        UPDATE accounts a SET
            balance = s.balance, earned_total = s.earned, penalty_total = s.penalty,
            redeemed_total = s.redeemed, entry_count = s.n
        FROM (
            SELECT chain_account_id,
                sum(CASE WHEN credit_account_id = chain_account_id THEN amount
                         ELSE -amount END) AS balance,
                sum(CASE kind WHEN 'award' THEN amount
                              WHEN 'correction' THEN CASE WHEN debit_account_id
                                  = chain_account_id THEN -amount ELSE 0 END
                              ELSE 0 END) AS earned,
                sum(CASE kind WHEN 'penalty' THEN amount
                              WHEN 'correction' THEN CASE WHEN credit_account_id
                                  = chain_account_id THEN -amount ELSE 0 END
                              ELSE 0 END) AS penalty,
                sum(CASE kind WHEN 'redemption' THEN amount WHEN 'refund' THEN -amount
                              ELSE 0 END) AS redeemed,
                count(*) AS n
            FROM transfers GROUP BY chain_account_id
        ) s
        WHERE a.id = s.chain_account_id;
        """,
    )
    with engine.begin() as conn:
        # Rows went in with their ids: move each sequence past them for later inserts.
        for table in (
            "villages",
            "shops",
            "products",
            "point_rules",
            "households",
            "accounts",
            "transfers",
            "sales",
        ):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            )
    began = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    timings["vacuum analyze"] = round(time.perf_counter() - began, 1)
    log(f"vacuum analyze: {timings['vacuum analyze']} s")
    engine.dispose()
    return timings


def measure(url: str, *, runs: int, explain: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        app = make_app(url, home)
        with app.app_context():
            # A database built before a table or index was added gets it now.
            db.metadata.create_all(db.engine)
            for index in Transfer.__table__.indexes:
                index.create(db.engine, checkfirst=True)
            session = db.session
            last_full = county.current_month(datetime.now(UTC), TZ).previous()
            village = ledger.get_village(session, "V042")
            counts = {
                "households": session.execute(text("SELECT count(*) FROM households")).scalar(),
                "transfers": session.execute(text("SELECT count(*) FROM transfers")).scalar(),
                "sales": session.execute(text("SELECT count(*) FROM sales")).scalar(),
                "village households": session.execute(
                    text("SELECT count(*) FROM households WHERE village_id = :v"),
                    {"v": village.id},
                ).scalar(),
                "transfers in the month": session.execute(
                    text(
                        "SELECT count(*) FROM transfers WHERE created_at >= :a AND created_at < :b"
                    ),
                    dict(zip(("a", "b"), last_full.bounds(TZ), strict=True)),
                ).scalar(),
            }
            this_month = county.current_month(datetime.now(UTC), TZ)

            def dashboard(month: county.Period) -> Any:
                # As the page does: closed days folded on this visit are stored and kept.
                figures = county.dashboard_figures(
                    session, tz=TZ, month=month, now=datetime.now(UTC)
                )
                session.commit()
                return figures

            cases: dict[str, Callable[[], Any]] = {
                "village red list": lambda: county.red_list(
                    session, period=last_full, tz=TZ, village=village, top=10
                ),
                "village black list": lambda: county.black_list(
                    session, period=last_full, tz=TZ, village=village
                ),
                "county ten-star list": lambda: county.ten_star_list(
                    session, period=last_full, tz=TZ
                ),
                "dashboard": lambda: dashboard(last_full),
                "dashboard, current month": lambda: dashboard(this_month),
                "dashboard without the day cache": lambda: county.dashboard_figures(
                    session, tz=TZ, month=last_full
                ),
                "county red list (top 100)": lambda: county.red_list(
                    session, period=last_full, tz=TZ, top=100
                ),
            }
            # The first visit ever folds 12 months of days into the cache: timed once.
            session.execute(text("DELETE FROM county_day_totals"))
            session.commit()
            began = time.perf_counter()
            dashboard(last_full)
            first_visit = round(time.perf_counter() - began, 3)
            log(f"dashboard, first visit (folds and stores the days): {first_visit} s")
            results: dict[str, Any] = {}
            statements: list[tuple[str, float]] = []

            @event.listens_for(db.engine, "before_cursor_execute")
            def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
                conn.info["t0"] = time.perf_counter()

            @event.listens_for(db.engine, "after_cursor_execute")
            def _after(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
                statements.append((statement, time.perf_counter() - conn.info["t0"]))
                if explain and statement.lstrip().upper().startswith("SELECT"):
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                    print("\n".join(r[0] for r in cursor.fetchall()))

            for name, call in cases.items():
                call()  # warm-up: plans cached, pages in shared buffers or the OS cache
                session.rollback()
                times, explain_once = [], explain
                for _ in range(runs):
                    statements.clear()
                    began = time.perf_counter()
                    result = call()
                    times.append(time.perf_counter() - began)
                    session.rollback()
                    if explain_once:
                        explain_once = False
                rows = getattr(result, "rows", None)
                results[name] = {
                    "median_s": round(statistics.median(times), 3),
                    "max_s": round(max(times), 3),
                    "rows": len(rows) if rows is not None else None,
                    "slowest_statement_s": round(max(t for _s, t in statements), 3),
                }
                log(f"{name}: median {results[name]['median_s']} s, max {results[name]['max_s']} s")
            return {
                "period": last_full.key,
                "village": village.code,
                "counts": counts,
                "results": results,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--quick", action="store_true", help="13,000 households, 1M transfers")
    parser.add_argument("--reuse", action="store_true", help="time the existing data only")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    url = normalize_database_url(args.database_url)
    households, transfers = (13_000, 1_000_000) if args.quick else (130_000, 10_000_000)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "size": {"households": households, "transfers": transfers},
    }
    if not args.reuse:
        log(f"building {households} households and {transfers} transfers")
        report["build_s"] = build(url, households, transfers, months=24)
    report.update(measure(url, runs=args.runs, explain=args.explain))
    goal = all(
        report["results"][name]["median_s"] < 1.0
        for name in ("village red list", "county ten-star list", "dashboard")
    )
    report["goal_met"] = goal
    print(json.dumps(report, ensure_ascii=False, indent=2))
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "reports.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

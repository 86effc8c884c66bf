"""Benchmark of the counter: 13 counters selling 3-line carts over HTTP to the production server.

One thread per shop plays a counter: it keeps one HTTP connection to `integrity-pos serve`
(waitress) and posts `POST /api/v1/shops/{code}/sales` with a bearer token, a random funded
household and three random goods, as fast as the answers come, for the given time. It
prints checkouts per second and latency p50, p95 and p99 (goals: p99 under 100 ms and at
least 150 checkouts per second at 13 counters on a 2-core machine, load generator
included), and with `--profile` where the time of one checkout goes (cProfile of checkouts
run in-process through the test client).

The script drops and recreates every table in the target database, so give it its own:

    createdb -h 127.0.0.1 -U postgres ipos_bench_checkout
    .venv/bin/python bench/checkout.py              # 60 s
    .venv/bin/python bench/checkout.py --seconds 10 --profile

The database URL comes from `--database-url`, else `$BENCH_DATABASE_URL`, else
postgresql://postgres@127.0.0.1:5432/ipos_bench_checkout. Figures are also written as JSON
to bench/out/checkout.json.
"""

# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, text

from config.app import create_app
from config.auth import Role, create_user, issue_token
from config.db import db, utcnow
from config.settings import normalize_database_url
from inventory import services as inventory
from ledger import services as ledger

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ipos_bench_checkout"
SECRETS = {"SECRET_KEY": "bench-secret", "CARD_SIGNING_KEY": "bench-card-key"}
PRODUCTS = 30
HOUSEHOLDS_PER_SHOP = 40


def build(url: str, home: str, counters: int) -> dict[str, Any]:
    """Fresh tables; shops with stock, one clerk and token each, funded households."""
    app = create_app({"TESTING": True, "HOME": home, "SQLALCHEMY_DATABASE_URI": url, **SECRETS})
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.metadata.create_all(conn)
    engine.dispose()
    shops: list[dict[str, Any]] = []
    with app.app_context():
        session = db.session
        ledger.ensure_system_accounts(session)
        now = utcnow()
        admin = create_user(
            session, username="bench-admin", password="bench-password", role=Role.ADMIN
        )
        village = ledger.create_village(
            session, actor=admin, now=now, code="BENCH", name="基准村", redemption_floor=0
        )
        skus = []
        for i in range(PRODUCTS):
            product = inventory.create_product(
                session,
                actor=admin,
                now=now,
                sku=f"B{i:03d}",
                name=f"商品{i}",
                points_price=1 + i % 9,
                unit="件",
            )
            skus.append(product.sku)
        for n in range(counters):
            code = f"S{n:02d}"
            inventory.create_shop(session, actor=admin, now=now, code=code, name=f"诚信超市{n}")
            inventory.receive_stock(
                session,
                actor=admin,
                now=now,
                shop_code=code,
                lines=[(sku, 90_000) for sku in skus],
                reference="bench",
                idempotency_key=f"bench-receive-{code}",
            )
            clerk = create_user(
                session,
                username=f"clerk-{code}",
                password="bench-password",
                role=Role.CLERK,
                shop_code=code,
            )
            token, _row = issue_token(session, clerk, now=now, ttl=timedelta(hours=4))
            households = []
            for h in range(HOUSEHOLDS_PER_SHOP):
                household = ledger.create_household(
                    session,
                    actor=admin,
                    now=now,
                    village_code=village.code,
                    head_name=f"户主{n}-{h}",
                    members=(f"户主{n}-{h}",),
                )
                ledger.post_award(
                    session,
                    actor=admin,
                    now=now,
                    household_id=household.id,
                    idempotency_key=f"bench-fund-{household.id}",
                    points=10_000,
                    reason="基准测试",
                )
                households.append(household.id)
            # The shop's redemption account exists before the counters race to make it.
            ledger._system_account(session, ledger.shop_account_code(code), ledger.AccountKind.SHOP)
            session.commit()
            shops.append({"code": code, "token": token, "households": households})
    return {"app": app, "shops": shops, "skus": skus}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, home: str, port: int, threads: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            "INTEGRITY_POS_HOME": home,
            "DATABASE_URL": url,
            **{f"INTEGRITY_POS_{k}": v for k, v in SECRETS.items()},
        }
    )
    command = [str(Path(sys.executable).parent / "integrity-pos"), "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--threads", str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("the server did not start")


def cart(skus: list[str], rng: random.Random) -> list[dict[str, Any]]:
    return [{"sku": sku, "qty": rng.randint(1, 3)} for sku in rng.sample(skus, 3)]


def counter(
    port: int, shop: dict[str, Any], skus: list[str], until: float, out: dict[str, Any]
) -> None:
    rng = random.Random(shop["code"])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {shop['token']}"}
    latencies: list[float] = []
    errors: dict[int, int] = {}
    while time.monotonic() < until:
        body = json.dumps(
            {
                "household_id": rng.choice(shop["households"]),
                "lines": cart(skus, rng),
                "idempotency_key": uuid.uuid4().hex,
            }
        )
        started = time.perf_counter()
        conn.request("POST", f"/api/v1/shops/{shop['code']}/sales", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 201:
            errors[response.status] = errors.get(response.status, 0) + 1
    conn.close()
    out["latencies"] = latencies
    out["errors"] = errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def profile_one_checkout(fixture: dict[str, Any], n: int = 300) -> str:
    app, shop, skus = fixture["app"], fixture["shops"][0], fixture["skus"]
    client = app.test_client()
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {shop['token']}"}

    def run() -> None:
        for _ in range(n):
            response = client.post(
                f"/api/v1/shops/{shop['code']}/sales",
                json={
                    "household_id": rng.choice(shop["households"]),
                    "lines": cart(skus, rng),
                    "idempotency_key": uuid.uuid4().hex,
                },
                headers=headers,
            )
            assert response.status_code == 201, response.get_data(as_text=True)

    with app.app_context():
        run()  # warm up
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(run)
        per = (time.perf_counter() - started) / n * 1000
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(25)
    return f"in-process, profiled: {per:.2f} ms per checkout\n" + stream.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--counters", type=int, default=13)
    parser.add_argument("--server-threads", type=int, default=16)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    url = normalize_database_url(args.database_url)

    with tempfile.TemporaryDirectory() as home:
        print(f"building {args.counters} shops …", flush=True)
        fixture = build(url, home, args.counters)
        port = free_port()
        server = start_server(url, home, port, args.server_threads)
        try:
            until = time.monotonic() + args.seconds
            results: list[dict[str, Any]] = [{} for _ in fixture["shops"]]
            threads = [
                threading.Thread(
                    target=counter, args=(port, shop, fixture["skus"], until, results[i])
                )
                for i, shop in enumerate(fixture["shops"])
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(timeout=10)
        latencies = [lat for r in results for lat in r.get("latencies", [])]
        errors: dict[str, int] = {}
        for r in results:
            for status, count in r.get("errors", {}).items():
                errors[str(status)] = errors.get(str(status), 0) + count
        figures = {
            "counters": args.counters,
            "seconds": round(elapsed, 1),
            "checkouts": len(latencies),
            "checkouts_per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
            "errors": errors,
        }
        for key, value in figures.items():
            print(f"{key:>22}: {value}")
        out = ROOT / "bench" / "out"
        out.mkdir(exist_ok=True)
        (out / "checkout.json").write_text(json.dumps(figures, indent=2))
        if args.profile:
            print(profile_one_checkout(fixture))


if __name__ == "__main__":
    main()

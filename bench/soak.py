"""Soak: 13 counters and an award importer against the production server for ten minutes.

Each counter sells 3-line carts as fast as answers come (with a pause between customers
so the run measures steadiness, not the ceiling); the importer posts a CSV of awards
every few seconds, as the office does. Every 30 seconds the script notes latency (p50,
p99) and the server's memory (resident set of the server and its workers). It reports
errors, latency over time with its trend, and memory growth after warm-up. Goals: zero
errors, no upward trend in latency, server memory growth under 10%.

Loopback only; the database gets its tables dropped and recreated, so give it its own:

    createdb -h 127.0.0.1 -U postgres ipos_soak
    .venv/bin/python bench/soak.py                # 600 s
    .venv/bin/python bench/soak.py --seconds 120  # a short look

Figures also go to bench/out/soak.json.
"""

# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

import argparse
import http.client
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from datetime import timedelta

from checkout import build, cart, free_port, percentile, start_server

from accounts.auth import issue_token
from config.settings import normalize_database_url
from core.db import db, utcnow

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ipos_soak"
WINDOW = 30.0


def _rss_kib(pid: int) -> int:
    """Resident memory of the server and its workers (Linux /proc)."""
    total = 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for each in [pid, *map(int, children)]:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


class Record:
    """Latencies and errors, stamped with the time they happened, shared by all threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float]] = []
        self.errors: list[tuple[float, str]] = []

    def ok(self, at: float, latency: float) -> None:
        with self.lock:
            self.samples.append((at, latency))

    def fail(self, at: float, what: str) -> None:
        with self.lock:
            self.errors.append((at, what))


def counter(port: int, shop: dict, skus: list[str], until: float, rec: Record, pause: float):
    rng = random.Random(shop["code"])
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {shop['token']}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < until:
        body = json.dumps(
            {
                "household_id": rng.choice(shop["households"]),
                "lines": cart(skus, rng),
                "idempotency_key": uuid.uuid4().hex,
            }
        )
        started = time.monotonic()
        try:
            conn.request("POST", f"/api/v1/shops/{shop['code']}/sales", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            rec.fail(started, f"sale: {type(exc).__name__}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        if response.status == 201:
            rec.ok(started, time.monotonic() - started)
        else:
            rec.fail(started, f"sale: HTTP {response.status}")
        time.sleep(pause * rng.random() * 2)
    conn.close()


def importer(port: int, token: str, households: list[int], until: float, rec: Record) -> None:
    rng = random.Random("awards")
    headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {token}"}
    batch = 0
    while time.monotonic() < until:
        rows = ["household_id,rule_code,persons,reason,idempotency_key"]
        for n in range(50):
            household = rng.choice(households)
            rows.append(
                f"{household},SOAK,1,soak batch {batch},soak-{batch}-{n}-{uuid.uuid4().hex}"
            )
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("POST", "/api/v1/awards/import", body="\n".join(rows), headers=headers)
            response = conn.getresponse()
            data = json.loads(response.read() or b"{}")
            if response.status != 200 or data.get("errors"):
                rec.fail(started, f"import: HTTP {response.status} {data.get('errors')}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            rec.fail(started, f"import: {type(exc).__name__}")
        finally:
            conn.close()
        batch += 1
        time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--counters", type=int, default=13)
    parser.add_argument("--pause", type=float, default=0.05, help="mean seconds between carts")
    parser.add_argument("--warmup", type=float, default=60)
    args = parser.parse_args()
    url = normalize_database_url(args.database_url)

    with tempfile.TemporaryDirectory() as home:
        fixture = build(url, home, args.counters)
        app = fixture["app"]
        with app.app_context():
            from accounts.auth import User
            from ledger import services as ledger

            admin = db.session.query(User).filter_by(username="bench-admin").one()
            ledger.create_rule(
                db.session,
                actor=admin,
                now=utcnow(),
                code="SOAK",
                title="环境整治",
                points=2,
                per="household",
            )
            token, _row = issue_token(db.session, admin, now=utcnow(), ttl=timedelta(hours=4))
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
        households = [h for shop in fixture["shops"] for h in shop["households"]]
        port = free_port()
        server = start_server(url, home, port, threads=16, workers=2)
        rec = Record()
        memory: list[tuple[float, int]] = []
        began = time.monotonic()
        until = began + args.seconds
        threads = [
            threading.Thread(
                target=counter, args=(port, shop, fixture["skus"], until, rec, args.pause)
            )
            for shop in fixture["shops"]
        ]
        threads.append(
            threading.Thread(target=importer, args=(port, token, households, until, rec))
        )
        try:
            for thread in threads:
                thread.start()
            while time.monotonic() < until:
                memory.append((time.monotonic() - began, _rss_kib(server.pid)))
                time.sleep(min(WINDOW / 3, max(until - time.monotonic(), 0.1)))
            for thread in threads:
                thread.join()
            memory.append((time.monotonic() - began, _rss_kib(server.pid)))
        finally:
            server.terminate()
            server.wait(timeout=30)

    windows = []
    for start in range(0, int(args.seconds), int(WINDOW)):
        lat = [took for at, took in rec.samples if start <= at - began < start + WINDOW]
        if lat:
            windows.append(
                {
                    "from_s": start,
                    "sales": len(lat),
                    "p50_ms": round(percentile(lat, 0.5) * 1000, 1),
                    "p99_ms": round(percentile(lat, 0.99) * 1000, 1),
                }
            )
    steady = [w for w in windows if w["from_s"] >= args.warmup] or windows
    third = max(len(steady) // 3, 1)
    early = statistics.mean(w["p50_ms"] for w in steady[:third])
    late = statistics.mean(w["p50_ms"] for w in steady[-third:])
    after_warmup = [kib for at, kib in memory if at >= args.warmup] or [m for _, m in memory]
    growth = (after_warmup[-1] - after_warmup[0]) / after_warmup[0] * 100 if after_warmup[0] else 0
    result = {
        "seconds": args.seconds,
        "counters": args.counters,
        "sales": len(rec.samples),
        "errors": len(rec.errors),
        "error_kinds": sorted({what for _, what in rec.errors}),
        "windows": windows,
        "p50_early_ms": round(early, 1),
        "p50_late_ms": round(late, 1),
        "latency_trend": round(late / early, 2) if early else None,
        "memory_kib_after_warmup": after_warmup[0],
        "memory_kib_end": after_warmup[-1],
        "memory_growth_percent": round(growth, 1),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "windows"}, indent=2))
    for w in windows:
        print(
            f"  {w['from_s']:>4}s  {w['sales']:>6} sales"
            f"  p50 {w['p50_ms']:>6} ms  p99 {w['p99_ms']:>6} ms"
        )
    verdict = (
        result["errors"] == 0
        and (result["latency_trend"] or 1) <= 1.2
        and result["memory_growth_percent"] < 10
    )
    print("goals met" if verdict else "goals NOT met")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

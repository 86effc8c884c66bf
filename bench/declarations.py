"""Benchmark of declarations: photo intake over HTTP, and the duplicate look-up at county scale.

Intake. `integrity-pos serve` runs as a real server process with two workers: gunicorn's
two worker processes (one per core, as `serve` starts them on this 2-core machine; eight
threads each, `--server-workers`, `--server-threads`) on PostgreSQL. Four client
connections play the county app, so that each worker always has a declaration in hand
and the next one waiting (`--clients 2` shows the figure with one request per worker):
each posts `POST /api/v1/declarations` as multipart with a 3 MB, 12-megapixel JPEG (4032
x 3024, as a phone takes it), a fresh idempotency key and a random household, as fast as
answers come, for the given time. Every photo is decoded, re-encoded, hashed and stored,
and its duplicate looked up, as in production; the eight test photos repeat, so later
declarations are flagged duplicates, which costs the same work. It prints declarations
per second, latency p50/p95, and the CPU the server's workers spent per declaration.
Goal: at least 20 declarations per second. The load generator and PostgreSQL share the
machine's two cores with the server.

Look-up. 100,000 photo hashes are stored (random 64-bit hashes with the top bit set, as
pHash's first bit nearly always is), then the duplicate look-up (declarations.services.
find_duplicate: one indexed query on the seven bands, Hamming distance in Python) runs for
probes that are near copies of stored hashes (0 to 6 bits flipped) and for fresh ones, on
SQLite and on PostgreSQL. It prints the median and p95 time over the probes and the mean
number of candidate rows the bands let through. Goal: under 50 ms.

The script drops and recreates every table in the PostgreSQL database it is given:

    createdb -h 127.0.0.1 -U postgres ipos_bench_declarations
    .venv/bin/python bench/declarations.py              # 20 s of intake, then look-ups
    .venv/bin/python bench/declarations.py --seconds 5 --hashes 20000

The database URL comes from `--database-url`, else `$BENCH_DATABASE_URL`, else
postgresql://postgres@127.0.0.1:5432/ipos_bench_declarations. Figures are also written as
JSON to bench/out/declarations.json.
"""

# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse
import http.client
import io
import json
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import create_engine, insert, or_, select, text

from accounts.auth import Role, create_user, issue_token
from bench.harness import TICK, free_port, start_server
from config.app import create_app
from config.settings import normalize_database_url
from core.db import db, utcnow
from core.timeutil import business_day, local_tz
from declarations import services as declarations
from declarations.models import Declaration, DeclarationPhoto
from declarations.services.duplicates import _BAND_COLUMNS, band_columns, bands, to_signed
from ledger import services as ledger

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ipos_bench_declarations"
SECRETS = {"SECRET_KEY": "bench-secret", "CARD_SIGNING_KEY": "bench-card-key"}
HOUSEHOLDS = 60
PHOTOS = 8
PHOTO_SIZE = (4032, 3024)
TARGET_BYTES = 3_000_000


def fresh_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.metadata.create_all(conn)
    engine.dispose()


def build(url: str, home: str) -> dict[str, Any]:
    """Fresh tables; a village, its households, a deed rule, a group leader with a token."""
    app = create_app({"TESTING": True, "HOME": home, "SQLALCHEMY_DATABASE_URI": url, **SECRETS})
    fresh_tables(url)
    with app.app_context():
        session = db.session
        ledger.ensure_system_accounts(session)
        now = utcnow()
        admin = create_user(session, username="bench-admin", password="bench-pw", role=Role.ADMIN)
        ledger.create_village(session, actor=admin, now=now, code="BENCH", name="基准村")
        ledger.create_rule(
            session, actor=admin, now=now, code="DEED", title="好人好事", points=5, per="household"
        )
        households = [
            ledger.create_household(
                session,
                actor=admin,
                now=now,
                village_code="BENCH",
                head_name=f"户主{n}",
                members=(f"户主{n}",),
            ).id
            for n in range(HOUSEHOLDS)
        ]
        reporter = create_user(
            session,
            username="bench-leader",
            password="bench-pw",
            role=Role.REPORTER,
            village_code="BENCH",
        )
        token, _row = issue_token(session, reporter, now=now, ttl=timedelta(hours=4))
        session.commit()
        today = business_day(now, local_tz()).isoformat()
    return {"households": households, "token": token, "today": today}


def phone_photo(seed: int) -> bytes:
    """A 12-megapixel JPEG of about 3 MB: smooth shapes under a phone sensor's noise."""
    rng = np.random.default_rng(seed)
    width, height = PHOTO_SIZE
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 6.3, 3)
    scale = rng.uniform(150, 600, 2)
    base = np.stack(
        [
            128 + 100 * np.sin(xx / scale[0] + phase[c]) * np.cos(yy / scale[1] - phase[c])
            for c in range(3)
        ],
        -1,
    )
    pixels = np.clip(base + rng.normal(0, 9, (height, width, 3)), 0, 255).astype("uint8")
    picture = Image.fromarray(pixels)
    for quality in (88, 85, 90, 82, 92):
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=quality)
        if abs(out.tell() - TARGET_BYTES) < 400_000:
            break
    return out.getvalue()


def multipart(fields: dict[str, str], photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="IMG.JPG"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
    )
    body = b"".join(parts) + photo + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (Linux /proc; 0 elsewhere)."""
    total = 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return total
    return total + sum(process_tree_cpu(int(child)) for child in children)


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (Linux /proc/stat; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def intake(args: argparse.Namespace, url: str) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="bench-declarations-")
    fixture = build(url, home)
    print(f"making {PHOTOS} phone photos of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} ...", flush=True)
    photos = [phone_photo(seed) for seed in range(PHOTOS)]
    sizes = [len(p) for p in photos]
    port = free_port()
    server = start_server(
        url,
        home,
        port,
        workers=args.server_workers,
        threads=args.server_threads,
        secrets=SECRETS,
        ready_path="/api/v1/declarations",
    )
    latencies: list[list[float]] = [[] for _ in range(args.clients)]
    errors: dict[int, int] = {}
    duplicates = [0]
    lock = threading.Lock()

    def client(n: int, until: float) -> None:
        rng = random.Random(n)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = n
        while time.monotonic() < until:
            fields = {
                "household_id": str(rng.choice(fixture["households"])),
                "rule_code": "DEED",
                "happened_on": fixture["today"],
                "idempotency_key": uuid.uuid4().hex,
            }
            body, content_type = multipart(fields, photos[i % PHOTOS])
            i += args.clients
            started = time.perf_counter()
            conn.request(
                "POST",
                "/api/v1/declarations",
                body=body,
                headers={
                    "Content-Type": content_type,
                    "Authorization": f"Bearer {fixture['token']}",
                },
            )
            response = conn.getresponse()
            answer = response.read()
            latencies[n].append(time.perf_counter() - started)
            with lock:
                if response.status != 201:
                    errors[response.status] = errors.get(response.status, 0) + 1
                elif b"duplicate_of" in answer:
                    duplicates[0] += 1
        conn.close()

    try:
        # A few declarations first: every worker has built its app and warmed its caches.
        client(0, time.monotonic() + 3)
        latencies[0].clear()
        errors.clear()
        duplicates[0] = 0
        cpu_before = process_tree_cpu(server.pid)
        busy_before, own_before = machine_busy(), own_cpu()
        started = time.perf_counter()
        until = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(n, until)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        server_cpu = process_tree_cpu(server.pid) - cpu_before
        busy = machine_busy() - busy_before
        load_generator = own_cpu() - own_before
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    done = [x for per_client in latencies for x in per_client]
    ok = len(done) - sum(errors.values())
    return {
        "server": f"integrity-pos serve --workers {args.server_workers} "
        f"--threads {args.server_threads} (gunicorn), PostgreSQL",
        "clients": args.clients,
        "photo_bytes": {"min": min(sizes), "max": max(sizes)},
        "photo_pixels": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}",
        "seconds": round(elapsed, 1),
        "declarations": ok,
        "flagged_duplicate": duplicates[0],
        "errors": errors,
        "declarations_per_second": round(ok / elapsed, 1),
        "latency_ms": {
            "p50": round(statistics.median(done) * 1000, 1) if done else None,
            "p95": round(sorted(done)[int(len(done) * 0.95) - 1] * 1000, 1) if done else None,
        },
        "server_cpu_ms_per_declaration": round(server_cpu / max(ok, 1) * 1000, 1),
        # Everything else the machine did meanwhile: PostgreSQL, and any other program.
        "cpu_ms_per_declaration": {
            "server": round(server_cpu / max(ok, 1) * 1000, 1),
            "load_generator": round(load_generator / max(ok, 1) * 1000, 1),
            "postgresql_and_others": round(
                max(busy - server_cpu - load_generator, 0) / max(ok, 1) * 1000, 1
            ),
        },
        "machine_cpu_busy_percent": round(busy / elapsed / (os.cpu_count() or 1) * 100),
    }


def store_hashes(url: str, home: str, count: int, seed: int) -> list[int]:
    """`count` photo hashes stored with their bands, as the intake stores them."""
    app = create_app({"TESTING": True, "HOME": home, "SQLALCHEMY_DATABASE_URI": url, **SECRETS})
    fresh_tables(url)
    rng = random.Random(seed)
    hashes = [rng.getrandbits(63) | (1 << 63) for _ in range(count)]
    with app.app_context():
        session = db.session
        now = utcnow()
        admin = create_user(session, username="bench-admin", password="bench-pw", role=Role.ADMIN)
        ledger.ensure_system_accounts(session)
        ledger.create_village(session, actor=admin, now=now, code="BENCH", name="基准村")
        rule = ledger.create_rule(
            session, actor=admin, now=now, code="DEED", title="好人好事", points=5, per="household"
        )
        household = ledger.create_household(
            session, actor=admin, now=now, village_code="BENCH", head_name="户主"
        )
        session.commit()
        batch = 10_000
        for start in range(0, count, batch):
            chunk = hashes[start : start + batch]
            ids = session.scalars(
                insert(Declaration).returning(Declaration.id, sort_by_parameter_order=True),
                [
                    {
                        "household_id": household.id,
                        "village_id": household.village_id,
                        "rule_id": rule.id,
                        "rule_code": "DEED",
                        "happened_on": now.date(),
                        "status": "pending",
                        "idempotency_key": f"declaration:bench-{start + i}",
                        "request_hash": "0" * 64,
                        "submitted_by_id": admin.id,
                        "submitted_at": now,
                    }
                    for i in range(len(chunk))
                ],
            ).all()
            session.execute(
                insert(DeclarationPhoto),
                [
                    {
                        "declaration_id": declaration_id,
                        "position": 1,
                        "sha256": f"{start + i:064x}",
                        "upload_sha256": f"{start + i:064x}",
                        "width": 2016,
                        "height": 1512,
                        "size_bytes": 300_000,
                        "phash": to_signed(value),
                        **band_columns(value),
                        "created_at": now,
                    }
                    for i, (declaration_id, value) in enumerate(zip(ids, chunk, strict=True))
                ],
            )
            session.commit()
        if url.startswith("postgresql"):
            session.execute(text("ANALYZE declaration_photos"))
            session.commit()
    return hashes


def lookups(url: str, label: str, count: int, probes: int) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="bench-lookup-")
    print(f"storing {count:,} photo hashes on {label} ...", flush=True)
    hashes = store_hashes(url, home, count, seed=1)
    app = create_app({"TESTING": True, "HOME": home, "SQLALCHEMY_DATABASE_URI": url, **SECRETS})
    rng = random.Random(2)
    queries = []
    for i in range(probes):
        if i % 2:
            value = rng.getrandbits(63) | (1 << 63)  # a new picture
        else:
            value = rng.choice(hashes)  # a copy of a stored one
            for bit in rng.sample(range(63), rng.randint(0, declarations.THRESHOLD)):
                value ^= 1 << bit
        queries.append(value)
    timings, candidates, found = [], [], 0
    with app.app_context():
        session = db.session
        for value in queries[:5]:  # warm the connection and the caches
            declarations.find_duplicate(session, value)
        for value in queries:
            started = time.perf_counter()
            match = declarations.find_duplicate(session, value)
            timings.append((time.perf_counter() - started) * 1000)
            found += match is not None
            wanted = bands(value)
            candidates.append(
                len(
                    session.execute(
                        select(DeclarationPhoto.id).where(
                            or_(*(c == b for c, b in zip(_BAND_COLUMNS, wanted, strict=True)))
                        )
                    ).all()
                )
            )
        session.rollback()
        db.engine.dispose()
    timings.sort()
    return {
        "database": label,
        "stored_hashes": count,
        "probes": probes,
        "copies_found": f"{found} of {probes // 2 + probes % 2}",
        "median_ms": round(statistics.median(timings), 2),
        "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2),
        "mean_candidates": round(statistics.mean(candidates), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--server-threads", type=int, default=8)
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=60)
    parser.add_argument("--skip-intake", action="store_true")
    parser.add_argument("--skip-lookup", action="store_true")
    args = parser.parse_args()
    url = normalize_database_url(args.database_url)

    figures: dict[str, Any] = {}
    if not args.skip_intake:
        figures["intake"] = intake(args, url)
        i = figures["intake"]
        print(
            f"intake: {i['declarations_per_second']} declarations/s "
            f"({i['declarations']} in {i['seconds']} s; {i['server']}; {i['clients']} clients; "
            f"{i['photo_bytes']['min'] / 1e6:.1f}-{i['photo_bytes']['max'] / 1e6:.1f} MB JPEGs "
            f"of {i['photo_pixels']}); latency p50 {i['latency_ms']['p50']} ms, "
            f"p95 {i['latency_ms']['p95']} ms; CPU ms per declaration "
            f"{i['cpu_ms_per_declaration']}, machine {i['machine_cpu_busy_percent']}% busy; "
            f"errors {i['errors'] or 0}  (goal: >= 20/s)",
            flush=True,
        )
    if args.skip_lookup:
        return
    sqlite_path = Path(tempfile.mkdtemp(prefix="bench-lookup-sqlite-")) / "lookup.db"
    figures["lookup"] = [
        lookups(f"sqlite:///{sqlite_path}", "SQLite", args.hashes, args.probes),
        lookups(url, "PostgreSQL", args.hashes, args.probes),
    ]
    for row in figures["lookup"]:
        print(
            f"duplicate look-up, {row['database']}, {row['stored_hashes']:,} stored hashes: "
            f"median {row['median_ms']} ms, p95 {row['p95_ms']} ms over {row['probes']} probes, "
            f"{row['mean_candidates']} candidate rows on average, copies found "
            f"{row['copies_found']}  (goal: < 50 ms)",
            flush=True,
        )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "declarations.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

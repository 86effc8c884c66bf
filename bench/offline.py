"""Benchmark of the shop node: first sync, idle sync, offline checkout, and the drain.

A county server on PostgreSQL (`integrity-pos serve`) holds 130,000 households (in 130
villages whose home shop is BEN), each with a member and an active card, and 1,000 goods
stocked at BEN, bulk-loaded with INSERT ... SELECT (households' balances are set
directly, not through award transfers: nothing here reads the ledger's chain). A shop
node for BEN (`integrity-pos shop-node`) talks to the county through a TCP proxy
(tests/nodes/e2e/proxy.py) that counts the bytes and can cut the line. It measures:

* first sync of a new node: how much longer the node takes to start with the line up
  (it syncs before it serves) than with the line cut, and the bytes the county sent;
  median of 3 new state directories (goal: under 60 s);
* an idle sync, nothing changed: one round of the node's Syncer (outbox, feed, report)
  run in this process over the synced state directory; median of 20 (goal: under 50 ms);
* offline checkout at the node, line cut: p50 and p99 of 1,000 sales, one clerk over
  one keep-alive connection (goal: p99 under 50 ms);
* the drain: the line restored, the time from the first of those sales reaching the
  county (node_sales rows, counted there) to the last, and from the restore (which waits
  for the syncer's next round); goal: at least 100 sales a second.

The node is watched by its port and at the county; GET /node/status is timed once.

    createdb -h 127.0.0.1 -U postgres ipos_bench_offline   # the script recreates it
    .venv/bin/python bench/offline.py
    .venv/bin/python bench/offline.py --households 13000 --runs 1   # quick

The database URL comes from `--database-url`, else `$BENCH_DATABASE_URL`, else
postgresql://postgres@127.0.0.1:5432/ipos_bench_offline; the script DROPs and recreates
that database. Figures are printed and written as JSON to bench/out/offline.json.
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
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import requests
from sqlalchemy import create_engine, make_url, text

from bench.harness import free_port, start_server
from config.settings import normalize_database_url
from tests.nodes.e2e.proxy import TcpProxy

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/ipos_bench_offline"
SECRETS = {"SECRET_KEY": "bench-secret", "CARD_SIGNING_KEY": "bench-card-key"}
CLI = Path(sys.executable).parent / "integrity-pos"
PASSWORD = "bench-pass-2026"
SHOP = "BEN"
VILLAGES = 130
GOALS = {"first_sync_s": 60, "idle_sync_ms": 50, "offline_p99_ms": 50, "drain_per_s": 100}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait(check: Callable[[], Any], what: str, timeout: float = 300, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (requests.RequestException, OSError):
            value = None
        if value:
            return value
        time.sleep(every)
    sys.exit(f"timed out waiting for {what}")


class Bench:
    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.home = home
        self.env = dict(os.environ)
        self.env.update(
            {
                "INTEGRITY_POS_HOME": str(home),
                "DATABASE_URL": url,
                "INTEGRITY_POS_LOGIN_RATE_LIMIT": "100000 per minute",
                **{f"INTEGRITY_POS_{k}": v for k, v in SECRETS.items()},
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
            }
        )
        self.server: subprocess.Popen[bytes] | None = None
        self.port = 0

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(CLI), *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode:
            sys.exit(f"integrity-pos {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        response = requests.request(
            method,
            f"http://127.0.0.1:{self.port}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        if response.status_code >= 300:
            sys.exit(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json()


def recreate_database(url: str) -> None:
    target = make_url(url)
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(
            text(f"CREATE DATABASE \"{target.database}\" ENCODING 'UTF8' TEMPLATE template0")
        )
    engine.dispose()


def build(bench: Bench, households: int, products: int) -> dict[str, Any]:
    """Schema by migrations, users by the CLI, villages and shop by the API, the rest by SQL."""
    began = time.perf_counter()
    bench.cli("init-db")
    bench.cli("create-user", "admin", "--role", "admin", "--password", PASSWORD)
    bench.port = free_port()
    bench.server = start_server(
        bench.url,
        str(bench.home),
        bench.port,
        workers=2,
        threads=8,
        secrets=SECRETS,
        ready_path="/api/v1/node",
    )
    admin = token(bench.port, "admin")
    bench.api("POST", "/api/v1/shops", admin, {"code": SHOP, "name": "基准诚信超市"})
    bench.cli("create-user", "clerk-ben", "--role", "clerk", "--shop", SHOP, "--password", PASSWORD)
    for v in range(1, VILLAGES + 1):
        body = {"code": f"BV{v:03d}", "name": f"基准第{v}村", "shop_code": SHOP}
        bench.api("POST", "/api/v1/villages", admin, body)
    engine = create_engine(bench.url)
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO products (sku, name, unit, points_price, category, active, created_at)
                SELECT 'B' || lpad(g::text, 4, '0'), '基准商品' || g, '件', 1 + g % 9, '日用',
                       true, now()
                FROM generate_series(1, :p) g;
                """
            ),
            {"p": products},
        )
        conn.execute(
            text(
                """
                INSERT INTO stock_levels (shop_id, product_id, on_hand, reorder_level)
                SELECT s.id, p.id, 100000, 0 FROM shops s, products p WHERE s.code = :shop
                """
            ),
            {"shop": SHOP},
        )
        conn.execute(
            text(
                """
                INSERT INTO households (village_id, head_name, address, status, created_at)
                SELECT v.id, '户主' || g, NULL, 'active', now()
                FROM generate_series(1, :h) g
                JOIN villages v ON v.code = 'BV' || lpad((1 + g % :v)::text, 3, '0')
                """
            ),
            {"h": households, "v": VILLAGES},
        )
        conn.execute(
            text(
                """
                INSERT INTO household_members (household_id, name, position)
                SELECT id, head_name, 0 FROM households;
                INSERT INTO accounts (kind, code, household_id, balance, earned_total,
                                      penalty_total, redeemed_total, entry_count, head_hash,
                                      created_at)
                SELECT 'household', 'household:' || id, id, 500, 500, 0, 0, 0,
                       repeat('0', 64), now()
                FROM households;
                INSERT INTO member_cards (household_id, number, serial, status, issued_at)
                SELECT id, 1, lpad(id::text, 6, '0') || '-01', 'active', now() FROM households;
                """
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        ids = [row[0] for row in conn.execute(text("SELECT id FROM households ORDER BY id"))]
        skus = [row[0] for row in conn.execute(text("SELECT sku FROM products ORDER BY id"))]
    engine.dispose()
    node_token = bench.cli("register-node", "--shop", SHOP, "--username", "node-ben")
    log(f"built {len(ids)} households, {len(skus)} goods in {time.perf_counter() - began:.1f} s")
    return {"households": ids, "skus": skus, "node_token": node_token.strip().splitlines()[-1]}


def token(port: int, username: str, base: str | None = None) -> str:
    response = requests.post(
        (base or f"http://127.0.0.1:{port}") + "/api/v1/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    if response.status_code != 201:
        sys.exit(f"sign-in {username} -> {response.status_code}: {response.text[:300]}")
    return str(response.json()["token"])


class NodeProcess:
    # Every node started, so that a run that stops half-way (sys.exit) leaves none behind.
    started: ClassVar[list[NodeProcess]] = []

    def __init__(self, bench: Bench, proxy: TcpProxy, node_token: str, state_dir: Path) -> None:
        NodeProcess.started.append(self)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(bench.env)
        env.pop("DATABASE_URL")
        env["INTEGRITY_POS_HOME"] = str(state_dir.parent / "node-home")
        self.log = (state_dir.parent / f"{state_dir.name}.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(CLI),
                "shop-node",
                "--server",
                proxy.url,
                "--token",
                node_token,
                "--shop",
                SHOP,
                "--state-dir",
                str(state_dir),
                "--port",
                str(self.port),
                "--printer",
                f"file:{state_dir.parent / (state_dir.name + '-receipts.bin')}",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def listening(self) -> bool:
        """The node serves only after its first sync round (with the line up, the first sync):
        its port accepting is the moment, and asking costs the node nothing."""
        if self.process.poll() is not None:
            sys.exit(f"the node exited ({self.process.returncode}); see {self.log.name}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def status(self) -> dict[str, Any] | None:
        if self.process.poll() is not None:
            sys.exit(f"the node exited ({self.process.returncode}); see {self.log.name}")
        response = requests.get(self.url + "/node/status", timeout=300)
        return response.json() if response.status_code == 200 else None

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()

    @classmethod
    def kill_all(cls) -> None:
        for node in cls.started:
            node.kill()


def start_seconds(bench: Bench, proxy: TcpProxy, node_token: str, state_dir: Path) -> float:
    """From the process's start to its first answer (it syncs first when the line is up)."""
    began = time.perf_counter()
    node = NodeProcess(bench, proxy, node_token, state_dir)
    wait(node.listening, "the node to answer")
    elapsed = time.perf_counter() - began
    node.kill()
    return elapsed


def measure_first_sync(
    bench: Bench, proxy: TcpProxy, node_token: str, work: Path, runs: int, households: int
) -> dict[str, Any]:
    starts_cut: list[float] = []
    starts_up: list[float] = []
    sent: list[int] = []
    status_s: list[float] = []
    for run in range(runs):
        proxy.cut()
        starts_cut.append(start_seconds(bench, proxy, node_token, work / f"cut-{run}"))
        proxy.restore()
        proxy.reset_counters()
        state = work / f"first-{run}"
        node = NodeProcess(bench, proxy, node_token, state)
        began = time.perf_counter()
        wait(node.listening, "the node's first answer")
        starts_up.append(time.perf_counter() - began)
        sent.append(proxy.bytes_down)
        # One status, once synced: GET /node/status costs the node time with many households.
        asked = time.perf_counter()
        status = node.status() or {}
        status_s.append(time.perf_counter() - asked)
        if status.get("allowance_households") != households:
            log(f"warning: the node holds {status.get('allowance_households')} households")
        node.kill()
        log(
            f"first sync run {run + 1}: start {starts_up[-1]:.1f} s with the line up, "
            f"{starts_cut[-1]:.1f} s cut, {sent[-1] / 1e6:.1f} MB from the county"
        )
    sync = [up - cut for up, cut in zip(starts_up, starts_cut, strict=True)]
    return {
        "first_sync_s": round(statistics.median(sync), 2),
        "first_sync_runs_s": [round(s, 2) for s in sync],
        "node_start_line_cut_s": round(statistics.median(starts_cut), 2),
        "first_sync_bytes_down": int(statistics.median(sent)),
        "first_sync_bytes_up": proxy.bytes_up,
        "node_status_s": round(statistics.median(status_s), 2),
    }


def measure_idle_sync(proxy: TcpProxy, node_token: str, state: Path, rounds: int) -> dict:
    """One Syncer round in this process over a synced state dir: nothing to send or fetch."""
    from nodes.local.store import open_store
    from nodes.local.sync import Syncer

    store = open_store(state)
    syncer = Syncer(store, server_url=proxy.url, token=node_token, shop_code=SHOP)
    assert syncer.run_once(), "the idle sync round failed"
    times = []
    proxy.reset_counters()
    for _ in range(rounds):
        began = time.perf_counter()
        online = syncer.run_once()
        times.append((time.perf_counter() - began) * 1000)
        assert online
    return {
        "idle_sync_ms": round(statistics.median(times), 1),
        "idle_sync_max_ms": round(max(times), 1),
        "idle_sync_bytes": (proxy.bytes_up + proxy.bytes_down) // rounds,
    }


def measure_offline(
    bench: Bench, proxy: TcpProxy, node_token: str, state: Path, fixture: dict, sales: int
) -> dict[str, Any]:
    node = NodeProcess(bench, proxy, node_token, state)
    wait(node.listening, "the node")
    clerk = token(0, "clerk-ben", base=node.url)
    proxy.cut()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {clerk}"
    households, skus = fixture["households"], fixture["skus"]

    def sell(n: int) -> None:
        body = {
            "household_id": households[(n * 7919) % len(households)],
            "lines": [{"sku": skus[n % len(skus)], "qty": 1}],
            "idempotency_key": f"bench-offline-{uuid.uuid4().hex}",
        }
        response = http.post(f"{node.url}/api/v1/shops/{SHOP}/sales", json=body, timeout=60)
        if response.status_code != 201 or not response.json().get("offline"):
            sys.exit(f"offline sale {n} -> {response.status_code}: {response.text[:300]}")

    # The first sale finds the line down (the node then stops trying the county first).
    sell(sales)
    latencies = []
    for n in range(sales):
        began = time.perf_counter()
        sell(n)
        latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    pending = sales + 1
    log(f"{sales} offline sales: p50 {statistics.median(latencies):.1f} ms")

    # The drain, watched at the county (cheap) rather than through /node/status.
    engine = create_engine(bench.url)

    def at_county() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM node_sales WHERE idempotency_key LIKE :k"),
                    {"k": "bench-offline-%"},
                ).scalar_one()
            )

    proxy.reset_counters()
    restored = time.perf_counter()
    proxy.restore()
    first = wait(lambda: at_county() > 0 and time.perf_counter(), "the drain to start", every=0.01)
    done = wait(
        lambda: at_county() >= pending and time.perf_counter(), "the drain to finish", every=0.02
    )
    drained = at_county()
    engine.dispose()
    node.kill()
    return {
        "offline_p50_ms": round(statistics.median(latencies), 1),
        "offline_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "offline_max_ms": round(latencies[-1], 1),
        "drain_per_s": round(pending / max(done - first, 1e-6), 1),
        "drain_from_restore_s": round(done - restored, 2),
        "drain_wait_before_first_s": round(first - restored, 2),
        "drained_sales_at_county": drained,
        "drain_bytes_up": proxy.bytes_up,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--households", type=int, default=130_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--sales", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3, help="first syncs to take the median of")
    args = parser.parse_args()
    url = normalize_database_url(args.database_url)
    recreate_database(url)
    work = Path(tempfile.mkdtemp(prefix="ipos-bench-offline-"))
    bench = Bench(url, work / "county")
    proxy: TcpProxy | None = None
    try:
        fixture = build(bench, args.households, args.products)
        proxy = TcpProxy(bench.port).start()
        figures: dict[str, Any] = {
            "households": len(fixture["households"]),
            "products": len(fixture["skus"]),
        }
        figures.update(
            measure_first_sync(
                bench, proxy, fixture["node_token"], work, args.runs, args.households
            )
        )
        synced = work / f"first-{args.runs - 1}"
        figures.update(measure_idle_sync(proxy, fixture["node_token"], synced, 20))
        figures.update(
            measure_offline(bench, proxy, fixture["node_token"], synced, fixture, args.sales)
        )
    finally:
        NodeProcess.kill_all()
        if proxy is not None:
            proxy.close()
        if bench.server is not None:
            bench.server.terminate()
            bench.server.wait(timeout=30)
    print()
    for key, value in figures.items():
        goal = GOALS.get(key)
        if goal is None:
            mark = ""
        elif key == "drain_per_s":
            mark = f"  (goal >= {goal}: {'ok' if value >= goal else 'MISSED'})"
        else:
            mark = f"  (goal < {goal}: {'ok' if value < goal else 'MISSED'})"
        print(f"{key:28} {value}{mark}")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "offline.json").write_text(json.dumps(figures, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

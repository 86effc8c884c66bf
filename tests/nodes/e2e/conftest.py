"""A county server, a cuttable line and a shop node, as real processes (tests/nodes/e2e).

One county server per backend for the session (SQLite in a temporary home; PostgreSQL in
a database of its own, TEST_DATABASE_URL's name + `_county`, when that is set); each test
gets a world of its own on it: two shops, two villages, households with points and cards,
a clerk, a registered node behind a TCP proxy. Tests wait by polling, never by sleeping.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import BACKENDS, PG_URL
from tests.nodes.e2e.processes import PASSWORD, Api, County, Node, new_key
from tests.nodes.e2e.proxy import TcpProxy

# Goods every world's shops stock: (sku, price).
GOODS = {"E2E-RICE": 70, "E2E-OIL": 30, "E2E-SALT": 3}
# The village's floor: what a household keeps whatever it buys.
FLOOR = 50
_worlds = itertools.count(1)
# Worlds whose staff one process makes together (a scenario session uses about a dozen).
WORLDS_AT_ONCE = 12


# `make test-e2e` sets it: every scenario on every backend, the slow ones included.
FULL = os.environ.get("E2E_FULL") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts real county and shop node processes")
    config.addinivalue_line(
        "markers", "e2e_core: an end-to-end scenario that runs on PostgreSQL in `make test` too"
    )
    config.addinivalue_line("markers", "e2e_full: an end-to-end scenario only `make test-e2e` runs")


def _left_to_test_e2e(item: pytest.Item) -> bool:
    """`make test` runs each scenario on SQLite and the core ones on PostgreSQL as well."""
    if FULL:
        return False
    if item.get_closest_marker("e2e_full"):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("county") == "postgresql" and not item.get_closest_marker("e2e_core")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    later = []
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            if _left_to_test_e2e(item):
                later.append(item)
    if later:
        config.hook.pytest_deselected(items=later)
        items[:] = [item for item in items if item not in later]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    # A failed scenario shows what the node and the county said.
    if report.failed:
        world = getattr(item, "funcargs", {}).get("world")
        if isinstance(world, World):
            report.sections.append(("shop node log", world.node.tail(80)))
        county = getattr(item, "funcargs", {}).get("county")
        if isinstance(county, County) and county.log is not None:
            lines = county.log.read_text(errors="replace").splitlines()[-60:]
            report.sections.append(("county server log", "\n".join(lines)))
    return report


def _county_database(backend: str, home: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{home / 'county.db'}"
    assert PG_URL, "the PostgreSQL county needs TEST_DATABASE_URL"
    url = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{url.database}_county"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_county_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def county(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    backend = request.param
    home = tmp_path_factory.mktemp(f"county-{backend}")
    server = County(backend, home, _county_database(backend, home))
    try:
        server.start()
        assert server.admin is not None
        for sku, price in GOODS.items():
            server.admin.ok(
                "POST",
                "/api/v1/products",
                {"sku": sku, "name": f"端到端 {sku}", "points_price": price, "unit": "袋"},
            )
        yield server
    finally:
        server.stop()
        if backend == "postgresql":
            _drop_county_database(server.database_url)


@dataclass
class World:
    """One test's share of the county: its shops, villages, households, clerk and node."""

    county: County
    proxy: TcpProxy
    node: Node
    home_shop: str
    other_shop: str
    village: str
    other_village: str
    clerk: str
    households: dict[str, int] = field(default_factory=dict)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    clerk_token: str = ""

    @property
    def admin(self) -> Api:
        assert self.county.admin is not None
        return self.county.admin

    def at_node(self) -> Api:
        """The clerk at the counter, talking to the node."""
        return self.node.api(self.clerk_token)

    def sale_body(self, who: str, lines: dict[str, int], *, by_card: bool = False) -> dict:
        body: dict[str, Any] = {
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines.items()],
            "idempotency_key": new_key("sale"),
        }
        if by_card:
            body["card_payload"] = self.cards[who]["payload"]
        else:
            body["household_id"] = self.households[who]
        return body

    def sell_at_node(self, who: str, lines: dict[str, int], **kw: Any) -> Any:
        return self.at_node().post(
            f"/api/v1/shops/{self.home_shop}/sales", self.sale_body(who, lines, **kw)
        )

    def balance(self, who: str) -> int:
        return int(self.admin.ok("GET", f"/api/v1/households/{self.households[who]}")["balance"])

    def county_sales(self, shop: str | None = None, **query: Any) -> list[dict[str, Any]]:
        shop = shop or self.home_shop
        response = self.admin.get(f"/api/v1/shops/{shop}/sales", params=query)
        assert response.status_code == 200, response.text
        return list(response.json()["sales"])

    def statement(self, who: str) -> list[dict[str, Any]]:
        path = f"/api/v1/households/{self.households[who]}/statement?limit=200"
        return list(self.admin.ok("GET", path)["entries"])

    def stock(self, shop: str | None = None) -> dict[str, int]:
        items = self.admin.ok("GET", f"/api/v1/shops/{shop or self.home_shop}/stock")["items"]
        return {item["sku"]: item["on_hand"] for item in items}

    def assert_county_consistent(self) -> None:
        """The ledger chain and balances verify; each shop's stock matches its journal."""
        verified = self.county.cli("ledger", "verify", check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert self.admin.ok("GET", "/api/v1/ledger/verify")["ok"] is True
        for shop in (self.home_shop, self.other_shop):
            report = self.admin.ok("GET", f"/api/v1/shops/{shop}/stock/reconcile")
            assert report["ok"] is True, report


def prepare_worlds(county: County, count: int) -> None:
    """The shops, clerks and nodes of the next `count` worlds, made in one go."""
    admin = county.admin
    assert admin is not None
    numbers = [next(_worlds) for _ in range(count)]
    for n in numbers:
        for shop in (f"H{n:03d}", f"O{n:03d}"):
            admin.ok("POST", "/api/v1/shops", {"code": shop, "name": f"端到端超市{shop}"})
    # The first through the commands an office runs (`register-node` prints the token),
    # the rest through the same services in one process.
    first = f"H{numbers[0]:03d}"
    _created, printed = county.cli_together(
        (
            "create-user",
            f"clerk-{first.lower()}",
            "--role",
            "clerk",
            "--shop",
            first,
            "--password",
            PASSWORD,
        ),
        ("register-node", "--shop", first, "--username", f"node-{first.lower()}"),
    )
    tokens = {first: printed.strip().splitlines()[-1]}
    tokens.update(county.make_staff([f"H{n:03d}" for n in numbers[1:]]))
    county.prepared.extend((n, tokens[f"H{n:03d}"]) for n in numbers)


def build_world(county: County, tmp_path: Path, *, node_env: dict[str, str] | None = None):
    """Shops H/O, village V (home shop H, floor 50) and W (home shop O), and a node for H.

    Households of V: `rich` 500 points (allowance 200), `modest` 150 (allowance 100),
    `revoked` 300 whose card is revoked; of W: `stranger` 300.
    """
    if not county.prepared:
        prepare_worlds(county, WORLDS_AT_ONCE)
    n, node_token = county.prepared.pop(0)
    admin = county.admin
    assert admin is not None
    home_shop, other_shop = f"H{n:03d}", f"O{n:03d}"
    village, other_village = f"V{n:03d}", f"W{n:03d}"
    for shop in (home_shop, other_shop):
        admin.ok(
            "POST",
            f"/api/v1/shops/{shop}/stock/receipts",
            {
                "reference": f"e2e-{shop}",
                "lines": [{"sku": sku, "qty": 200} for sku in GOODS],
                "idempotency_key": new_key("receipt"),
            },
        )
    admin.ok(
        "POST",
        "/api/v1/villages",
        {
            "code": village,
            "name": f"端到端村{n}",
            "redemption_floor": FLOOR,
            "shop_code": home_shop,
        },
    )
    admin.ok(
        "POST",
        "/api/v1/villages",
        {"code": other_village, "name": f"邻村{n}", "shop_code": other_shop},
    )
    households: dict[str, int] = {}
    cards: dict[str, dict[str, Any]] = {}
    for who, where, points in (
        ("rich", village, 500),
        ("modest", village, 150),
        ("revoked", village, 300),
        ("stranger", other_village, 300),
    ):
        household = admin.ok(
            "POST",
            "/api/v1/households",
            {"village_code": where, "head_name": f"户主{who}", "members": [{"name": "家人"}]},
        )
        households[who] = household["id"]
        admin.ok(
            "POST",
            "/api/v1/awards",
            {
                "household_id": household["id"],
                "points": points,
                "reason": "端到端",
                "idempotency_key": new_key("award"),
            },
        )
        cards[who] = admin.ok("POST", f"/api/v1/households/{household['id']}/cards")
    clerk = f"clerk-{home_shop.lower()}"

    proxy = TcpProxy(county.port).start()
    node = Node(proxy.url, node_token, home_shop, tmp_path / "node-state", extra_env=node_env or {})
    return World(
        county, proxy, node, home_shop, other_shop, village, other_village, clerk, households, cards
    )


def start_world(world: World) -> World:
    """Start the node, let it sync, and sign the clerk in through it while online."""
    world.node.start()
    world.node.wait_status(
        "first sync", lambda s: s["online"] and s["last_sync_at"] and s["pending_sales"] == 0
    )
    body = world.at_node().ok(
        "POST", "/api/v1/auth/token", {"username": world.clerk, "password": PASSWORD}
    )
    world.clerk_token = body["token"]
    return world


@pytest.fixture
def world(county: County, tmp_path: Path) -> Iterator[World]:
    built = build_world(county, tmp_path)
    try:
        yield start_world(built)
    finally:
        built.node.stop()
        built.proxy.close()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()

"""The movement journal in time order, newest first, its on-hand column running without jumps.

A sale made offline reaches the county after goods received since; its movement keeps
the sale's time, so ids and times disagree. The journal follows the times.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from core.db import db
from inventory import services
from tests.helpers.pages import sign_in


def at(day: int) -> datetime:
    return datetime(2026, 11, day, 10, 0, tzinfo=UTC)


@pytest.fixture
def journal(factory: Any, shop: Any, rice: Any, oil: Any, manager: Any) -> dict[str, Any]:
    session, admin = db.session, factory.admin

    def receive(key: str, day: int, lines: list[tuple[str, int]]) -> None:
        services.receive_stock(
            session,
            actor=admin,
            now=at(day),
            shop_code=shop.code,
            lines=lines,
            reference=f"送货单-{key}",
            idempotency_key=key,
        )

    def sell(key: str, day: int, lines: list[tuple[str, int]]) -> None:
        services.record_stock_sale(
            session,
            actor=admin,
            now=at(day),
            shop_code=shop.code,
            lines=lines,
            reference=f"GJY-202611{day:02d}-{key}",
            idempotency_key=key,
        )

    receive("r1", 1, [("RICE-10", 10), ("OIL-5L", 4)])  # ids 1, 2
    receive("r2", 26, [("RICE-10", 5)])  # 3
    sell("s1", 10, [("RICE-10", 3)])  # 4: synced after the 11-26 delivery
    sell("s2", 20, [("OIL-5L", 1), ("RICE-10", 1)])  # 5, 6
    session.commit()
    return {"shop": shop.code, "manager": manager.username, "admin": admin}


# Newest first by day; per product, each on-hand is the next one's plus this quantity.
EXPECTED = [
    ("2026-11-26", "RICE-10", 5, 11),
    ("2026-11-20", "OIL-5L", -1, 3),
    ("2026-11-20", "RICE-10", -1, 6),
    ("2026-11-10", "RICE-10", -3, 7),
    ("2026-11-01", "OIL-5L", 4, 4),
    ("2026-11-01", "RICE-10", 10, 10),
]


def _rows(lines: list[Any]) -> list[tuple[str, str, int, int]]:
    return [(str(m.created_at.date()), m.product.sku, m.quantity, m.on_hand_after) for m in lines]


def test_the_journal_follows_the_days_and_each_goods_on_hand_runs(journal):
    lines = services.list_movements(db.session, actor=journal["admin"], shop_code=journal["shop"])
    assert _rows(lines) == EXPECTED
    # The posted figures stay as they were; only the listing counts in its own order.
    assert [m.movement.on_hand_after for m in lines][:1] == [15]


def test_pages_of_the_journal_join_without_a_gap_or_a_jump(journal):
    seen: list[Any] = []
    before = None
    while True:
        page = services.list_movements(
            db.session, actor=journal["admin"], shop_code=journal["shop"], limit=4, before=before
        )
        seen += page
        if len(page) < 4:
            break
        before = page[-1].id
    assert _rows(seen) == EXPECTED


def test_one_goods_journal(journal):
    lines = services.list_movements(
        db.session, actor=journal["admin"], shop_code=journal["shop"], sku="RICE-10", limit=2
    )
    assert _rows(lines) == [r for r in EXPECTED if r[1] == "RICE-10"][:2]
    rest = services.list_movements(
        db.session,
        actor=journal["admin"],
        shop_code=journal["shop"],
        sku="RICE-10",
        before=lines[-1].id,
    )
    assert _rows(lines + rest) == [r for r in EXPECTED if r[1] == "RICE-10"]


def test_the_api_lists_by_day(client, factory, journal):
    headers = factory.headers(journal["admin"])
    url = f"/api/v1/shops/{journal['shop']}/stock/movements"
    first = client.get(url, query_string={"limit": 3}, headers=headers).json
    rest = client.get(
        url, query_string={"limit": 3, "before": first["next_before"]}, headers=headers
    ).json
    rows = [
        (m["at"][:10], m["sku"], m["quantity"], m["on_hand_after"])
        for m in first["movements"] + rest["movements"]
    ]
    assert rows == EXPECTED


def test_the_movements_page_lists_by_day(client, journal):
    sign_in(client, journal["manager"])
    page = client.get(f"/shops/{journal['shop']}/stock/movements").get_data(as_text=True)
    days = re.findall(r"2026-11-(\d\d) \d\d:\d\d", page)
    assert days == ["26", "20", "20", "10", "01", "01"]


def test_the_county_movements_export_runs_by_day_from_the_month_before(journal, factory, shop):
    from zoneinfo import ZoneInfo

    from county import exports
    from county import services as county

    services.receive_stock(  # October: the export's stock starts from it
        db.session,
        actor=journal["admin"],
        now=datetime(2026, 10, 30, 10, 0, tzinfo=UTC),
        shop_code=shop.code,
        lines=[("RICE-10", 2)],
        reference="送货单-10",
        idempotency_key="r0",
    )
    db.session.commit()
    tz = ZoneInfo("Asia/Shanghai")
    table = exports.movements_table(
        db.session, shop=shop, month=county.parse_period("2026-11"), tz=tz
    )
    rows = [(str(r[0].date()), r[1], r[4], r[5]) for r in table.rows]
    assert rows == [
        (day, sku, qty, after + (2 if sku == "RICE-10" else 0))
        for day, sku, qty, after in reversed(EXPECTED)
    ]

"""Statements read in time order, newest first, with a running balance that never jumps.

Ids are the order of posting; a posting may carry an earlier time than one before it (a
sale made offline, synced later; an award dated back). The file follows the times.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from core.db import db
from ledger import services as ledger
from tests.factories import ensure_shop_account
from tests.helpers.pages import login


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 10, 0, tzinfo=UTC)


@pytest.fixture
def muddled(factory: Any) -> dict[str, Any]:
    """A household whose postings came in another order than their days."""
    village = factory.village("ZJB", name="郑家榜村")
    household = factory.household(village, head="覃德华")
    ensure_shop_account(db.session, "GJY")
    session, admin = db.session, factory.admin

    def award(key: str, when: datetime, points: int, reason: str) -> None:
        ledger.post_award(
            session,
            actor=admin,
            now=when,
            household_id=household.id,
            idempotency_key=key,
            points=points,
            reason=reason,
        )

    award("a1", at(11, 1), 100, "开户积分")  # id order 1
    award("a2", at(11, 26), 20, "参加志愿服务")  # 2
    ledger.redeem_points(  # 3: a sale of 11-10, synced after the 11-26 award
        session,
        actor=admin,
        now=at(11, 10),
        household_id=household.id,
        shop_code="GJY",
        points=70,
        idempotency_key="r1",
        sale_id=7,
        reason="GJY-20261110-0001",
    )
    award("a3", at(11, 5), -5, "焚烧秸秆")  # 4: dated back
    award("a4", at(11, 20), 8, "孝老爱亲")  # 5
    session.commit()
    return {"id": household.id, "headers": factory.headers(admin)}


# Newest first by day; each balance is the next one's plus this entry's points.
EXPECTED = [
    ("2026-11-26", 20, 53),
    ("2026-11-20", 8, 33),
    ("2026-11-10", -70, 25),
    ("2026-11-05", -5, 95),
    ("2026-11-01", 100, 100),
]


def _rows(entries: list[Any]) -> list[tuple[str, int, int]]:
    return [(str(e.at.date()), e.points, e.balance_after) for e in entries]


def test_the_statement_follows_the_days_and_its_balance_runs(muddled):
    entries = ledger.household_statement(db.session, muddled["id"])
    assert _rows(entries) == EXPECTED
    assert entries[0].balance_after == 53  # the balance now


def test_pages_of_the_statement_join_without_a_gap_or_a_jump(muddled):
    seen: list[Any] = []
    before = None
    while True:
        page = ledger.household_statement(db.session, muddled["id"], limit=2, before=before)
        seen += page
        if len(page) < 2:
            break
        before = page[-1].id
    assert _rows(seen) == EXPECTED


def test_the_api_statement_pages_by_next_before(client, muddled):
    url = f"/api/v1/households/{muddled['id']}/statement"
    first = client.get(url, query_string={"limit": 3}, headers=muddled["headers"]).json
    rest = client.get(
        url, query_string={"limit": 3, "before": first["next_before"]}, headers=muddled["headers"]
    ).json
    rows = [
        (e["at"][:10], e["points"], e["balance_after"]) for e in first["entries"] + rest["entries"]
    ]
    assert rows == EXPECTED
    assert rest["next_before"] is None


def test_a_cursor_that_is_no_entry_of_the_household_still_answers(muddled):
    entries = ledger.household_statement(db.session, muddled["id"], before=10**9)
    assert _rows(entries) == EXPECTED


def test_the_household_page_lists_by_day(client, factory, muddled):
    assert login(client, factory.admin.username).status_code == 302
    page = client.get(f"/households/{muddled['id']}").get_data(as_text=True)
    days = re.findall(r"2026-11-(\d\d)", page)
    assert days == sorted(days, reverse=True) and days[0] == "26"


def test_the_balance_page_lists_by_day(client, factory, muddled):
    _card, payload = factory.card(ledger.get_household(db.session, muddled["id"]))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/balance").get_data(True))
    response = client.post(
        "/balance",
        json={"payload": payload},
        headers={"X-CSRFToken": token[1], "Accept": "application/json"},
    )
    html = response.json["html"]
    days = re.findall(r"2026-11-(\d\d)", html)
    assert days == ["26", "20", "10", "05", "01"]
    balances = re.findall(r"<td class=\"num entry-after\"[^>]*>(\d+)</td>", html)
    assert balances == ["53", "33", "25", "95", "100"]


def test_the_county_statement_export_runs_oldest_first_by_day(muddled):
    from zoneinfo import ZoneInfo

    from county import exports

    household = ledger.get_household(db.session, muddled["id"])
    table = exports.statement_table(db.session, household=household, tz=ZoneInfo("Asia/Shanghai"))
    rows = [(str(r[0].date()), r[2], r[3]) for r in table.rows]
    assert rows == list(reversed(EXPECTED))

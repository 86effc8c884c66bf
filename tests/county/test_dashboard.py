"""The dashboard's figures agree with the ledger, scoped to the county or one shop."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from accounts.auth import Role
from core.db import utcnow
from core.errors import Forbidden
from core.timeutil import local_tz
from county import charts
from county import services as county
from inventory import services as inventory
from ledger import services as ledger
from pos import services as pos
from tests.county.conftest import TZ, County, local, login
from tests.factories import sell


@pytest.fixture
def shops(built: County):
    """Two shops, goods, and this month's sales (one partly returned) at both."""
    f = built.factory
    gjy, zjb = f.shop("GJY", name="高家堰诚信超市"), f.shop("ZJB", name="郑家榜诚信超市")
    rice = f.product("RICE", name="大米", points_price=7)
    soap = f.product("SOAP", name="肥皂", points_price=2)
    for shop in (gjy, zjb):
        f.receive(shop, (rice, 20), (soap, 30))
    inventory.set_reorder_levels(
        f.session, actor=built.admin, shop_code="GJY", lines=[("RICE", 19)]
    )
    f.session.commit()
    sale = sell(
        f.session,
        actor=built.admin,
        shop_code="GJY",
        household=built.h["己"],
        lines=[("RICE", 1), ("SOAP", 2)],
    )
    sell(
        f.session, actor=built.admin, shop_code="ZJB", household=built.h["甲"], lines=[("SOAP", 1)]
    )
    pos.record_return(
        f.session,
        actor=built.admin,
        now=utcnow(),
        tz=TZ,
        sale_id=sale.id,
        lines=[("SOAP", 1)],
        reason="破损",
        idempotency_key="ret-1",
    )
    f.session.commit()
    return gjy, zjb


def _months_between(first: county.Period, last: county.Period) -> int:
    return (last.year - first.year) * 12 + last.number - first.number + 1


def test_monthly_figures_agree_with_the_ledger(built: County, shops):
    session = built.factory.session
    now_month = county.current_month(utcnow(), TZ)
    last = max(now_month, county.parse_period("2026-12"), key=lambda p: p.first_day)
    first = county.parse_period("2026-10")
    months = county.monthly_points(session, tz=TZ, last=last, months=_months_between(first, last))
    by_key = {m.month: m for m in months}
    # Hand-counted: October 丁 PLANT 5. November: 甲 9, 乙 9, 丙 8, 丁 3, 戊 4 (its PLANT
    # corrected), 己 13 = 46 awarded; 丙's BURN 5 penalised (戊's -3 corrected).
    assert (by_key["2026-10"].awarded, by_key["2026-10"].penalised) == (5, 0)
    assert (by_key["2026-11"].awarded, by_key["2026-11"].penalised) == (46, 0 + 5)
    assert by_key["2026-12"].awarded == 2
    # Every month together is exactly what the system accounts hold.
    assert sum(m.awarded for m in months) == -ledger.system_balance(session, ledger.ISSUANCE_CODE)
    assert sum(m.penalised for m in months) == ledger.system_balance(session, ledger.PENALTY_CODE)
    shop_total = sum(
        ledger.system_balance(session, ledger.shop_account_code(code)) for code in ("GJY", "ZJB")
    )
    assert sum(m.redeemed for m in months) == shop_total == 7 + 4 + 2 - 2


def test_shop_days_goods_and_stock(built: County, shops):
    session = built.factory.session
    month = county.current_month(utcnow(), TZ)
    days = county.shop_days(session, tz=TZ, month=month)
    today = utcnow().astimezone(TZ).date().isoformat()
    assert {(d.shop_code, d.day, d.redemptions, d.points) for d in days} == {
        ("GJY", today, 1, 11 - 2),
        ("ZJB", today, 1, 2),
    }
    # Three days on, today is closed and cached: the same figures come back.
    later = utcnow() + timedelta(days=3)
    assert county.shop_days(session, tz=TZ, month=month, now=later) == days
    assert county.shop_days(session, tz=TZ, month=month, now=later) == days
    session.commit()
    goods = county.top_goods(session, month=month)
    assert [(g.sku, g.qty, g.points) for g in goods] == [("RICE", 1, 7), ("SOAP", 2, 4)]
    for _ in range(2):  # folded and stored, then read back from the cache
        assert county.top_goods(session, month=month, tz=TZ, now=later) == goods
        session.commit()
    assert county.top_goods(session, month=month, shop=shops[1], tz=TZ, now=later) == [
        county.GoodsFigure("SOAP", "肥皂", 1, 2)
    ]
    stock = {s.shop_code: s for s in county.stock_figures(session)}
    # GJY: rice 19 x 7 + soap 29 x 2 (one soap came back to the shelf).
    assert (stock["GJY"].units, stock["GJY"].value, stock["GJY"].low) == (48, 19 * 7 + 29 * 2, 1)
    assert stock["ZJB"].value == 20 * 7 + 29 * 2
    low = county.low_stock(session)
    assert [(item.shop_code, item.sku, item.on_hand) for item in low] == [("GJY", "RICE", 19)]
    gjy_only = county.dashboard_figures(session, tz=TZ, month=month, shop=shops[0])
    assert {d.shop_code for d in gjy_only.shop_days} == {"GJY"}
    assert [m.redeemed for m in gjy_only.months][-1] == 9


def test_never_redeemed_lists_households_without_a_redemption(built: County, shops):
    count, rows = county.never_redeemed(built.factory.session)
    # 甲 and 己 bought something; the other four never did. Richest first.
    assert count == 4
    assert [(r.head_name, r.balance) for r in rows] == [
        ("丁户主", 10),
        ("乙户主", 9),
        ("戊户主", 4),
        ("丙户主", 3),
    ]


def test_dashboard_scope(built: County, shops):
    session = built.factory.session
    manager = built.factory.user(Role.MANAGER, shop="GJY")
    assert county.dashboard_shop_scope(session, actor=manager, shop_code=None).code == "GJY"
    with pytest.raises(Forbidden):
        county.dashboard_shop_scope(session, actor=manager, shop_code="ZJB")
    cadre = built.factory.user(Role.CADRE, village="VA")
    with pytest.raises(Forbidden):
        county.dashboard_shop_scope(session, actor=cadre, shop_code=None)


def test_dashboard_pages(client, built: County, shops):
    login(client, built.admin)
    page = client.get("/county/dashboard").get_data(as_text=True)
    assert page.count("<svg") == 5 and 'class="bar"' in page
    assert "高家堰诚信超市" in page and "大米" in page
    assert client.get("/county/dashboard?month=2026-13").status_code == 422
    assert client.get("/county/dashboard?month=2026").status_code == 422
    client.post("/logout")


def test_a_manager_sees_their_shop_only(client, built: County, shops):
    login(client, built.factory.user(Role.MANAGER, shop="GJY"))
    assert client.get("/county/").headers["Location"].endswith("/county/shops/GJY")
    page = client.get("/county/shops/GJY").get_data(as_text=True)
    assert "高家堰诚信超市" in page and "郑家榜诚信超市" not in page
    assert client.get("/county/shops/ZJB").status_code == 403
    assert client.get("/county/dashboard").status_code == 403
    assert client.get("/county/shops/NOPE").status_code == 404


def test_charts_are_svg_with_numbers_beside_the_bars():
    svg = str(
        charts.column_chart(
            ["10月", "11月"],
            [charts.Series("获得", [5, 46], "#0a6630"), charts.Series("扣除", [0, 5], "#a11212")],
            title="每月积分 <测试>",
        )
    )
    assert svg.startswith("<svg") and "每月积分 &lt;测试&gt;" in svg
    assert svg.count('class="bar"') == 4 and ">46</text>" in svg and ">5</text>" in svg
    bars = str(charts.bar_chart(["大米", "肥皂"], [7, 4], title="商品"))
    assert bars.count('class="bar"') == 2 and ">大米</text>" in bars
    assert charts.nice_max(46) == 50 and charts.nice_max(0) == 1 and charts.nice_max(101) == 200


def test_local_month_and_day_bucketing_in_the_database(built: County):
    # 丁's deeds at 23:59:59 on 31 Oct and 00:00 on 1 Dec are 15:59:59 and 16:00 UTC.
    session = built.factory.session
    months = county.monthly_points(session, tz=TZ, last=county.parse_period("2026-12"), months=3)
    assert [m.month for m in months] == ["2026-10", "2026-11", "2026-12"]
    assert months[0].awarded == 5 and months[2].awarded == 2
    assert (
        local(2026, 12, 1).hour == 16
        and date(2026, 12, 1) == county.parse_period("2026-12").first_day
    )
    assert local_tz().key == "Asia/Shanghai"


def test_closed_days_are_cached_and_refolded_when_the_ledger_touches_them(built: County):
    from county.models import DayTotal

    session = built.factory.session
    last = county.parse_period("2026-12")
    now = local(2027, 1, 10)
    live = county.monthly_points(session, tz=TZ, last=last, months=3)
    cached = county.monthly_points(session, tz=TZ, last=last, months=3, now=now)
    session.commit()
    assert cached == live
    assert session.query(DayTotal).filter_by(scope="*").count() == 31 + 30 + 31
    # From the cache now: the same figures again.
    assert county.monthly_points(session, tz=TZ, last=last, months=3, now=now) == live
    # A late posting dated in October, and a correction of November's penalty, both
    # posted after the cache was made: both months are folded again.
    built.post("乙", local(2026, 10, 20), rule="PLANT")
    built.correct("burn", local(2027, 1, 9))
    again = county.monthly_points(session, tz=TZ, last=last, months=3, now=now)
    session.commit()
    assert [(m.month, m.awarded, m.penalised) for m in again] == [
        ("2026-10", 10, 0),
        ("2026-11", 46, 0),
        ("2026-12", 2, 0),
    ]
    assert again == county.monthly_points(session, tz=TZ, last=last, months=3)
    # A day that ended less than a day ago is never stored.
    january = county.monthly_points(
        session, tz=TZ, last=county.parse_period("2027-01"), months=1, now=local(2027, 2, 1, 12)
    )
    assert january[0].awarded == 0
    stored = {d for (d,) in session.query(DayTotal.day).filter(DayTotal.day >= date(2027, 1, 30))}
    assert stored == {date(2027, 1, 30)}

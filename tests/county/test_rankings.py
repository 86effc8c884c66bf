"""Stars, red list, black list and ten-star list from a hand-built ledger with known answers."""

from __future__ import annotations

import pytest

from core.errors import Forbidden, ValidationFailed
from county import services as county
from ledger import services as ledger
from tests.county.conftest import TZ, County, local, names

NOV = county.parse_period("2026-11")


def test_periods_parse_and_bound_at_local_midnight():
    assert county.parse_period("2026-11").bounds(TZ) == (local(2026, 11, 1), local(2026, 12, 1))
    q4 = county.parse_period("2026-q4")
    assert (q4.kind, q4.key, q4.label) == ("quarter", "2026-Q4", "2026年第4季度")
    assert q4.bounds(TZ) == (local(2026, 10, 1), local(2027, 1, 1))
    assert county.parse_period("2026").end_day.isoformat() == "2027-01-01"
    assert county.parse_period("2026-12").previous().key == "2026-11"
    assert county.parse_period("2027-01").previous().key == "2026-12"
    for bad in ("", "2026-13", "2026-00", "26-11", "2026-Q5", "2026/11", "x" * 300, None):
        with pytest.raises(ValidationFailed):
            county.parse_period(bad)


def test_red_list_ranks_by_score_with_shared_ranks(built: County):
    red = county.red_list(built.factory.session, period=NOV, tz=TZ, village=built.va, top=10)
    # 丙 earned 8 but was penalised: off the red list. 丁's 23:59:59 deed counts in November.
    assert names(red.rows) == [(1, "甲"), (1, "乙"), (3, "戊"), (4, "丁")]
    assert [(r.earned, r.penalised, r.score) for r in red.rows] == [
        (9, 0, 9),
        (9, 0, 9),
        (4, 0, 4),
        (3, 0, 3),
    ]


def test_red_list_cut_keeps_everyone_tied_at_the_last_place(built: County):
    session = built.factory.session
    assert names(county.red_list(session, period=NOV, tz=TZ, village=built.va, top=1).rows) == [
        (1, "甲"),
        (1, "乙"),
    ]
    top3 = county.red_list(session, period=NOV, tz=TZ, village=built.va, top=3)
    assert names(top3.rows) == [(1, "甲"), (1, "乙"), (3, "戊")]


def test_county_wide_red_list_spans_villages(built: County):
    red = county.red_list(built.factory.session, period=NOV, tz=TZ, top=2)
    assert names(red.rows) == [(1, "己"), (2, "甲"), (2, "乙")]
    assert red.rows[0].village_code == "VB"


def test_a_penalty_drops_a_household_off_the_red_list(built: County):
    session = built.factory.session
    before = county.red_list(session, period=NOV, tz=TZ, village=built.va)
    assert "丁" in dict((n, r) for r, n in names(before.rows))
    built.post("丁", local(2026, 11, 30, 12, 0), rule="BURN")
    after = county.red_list(session, period=NOV, tz=TZ, village=built.va)
    assert names(after.rows) == [(1, "甲"), (1, "乙"), (3, "戊")]
    black = county.black_list(session, period=NOV, tz=TZ, village=built.va)
    assert [e.head_name for e in black.rows] == ["丙户主", "丁户主"]


def test_period_boundaries_at_local_midnight(built: County):
    session = built.factory.session
    october = county.red_list(
        session, period=county.parse_period("2026-10"), tz=TZ, village=built.va
    )
    december = county.red_list(
        session, period=county.parse_period("2026-12"), tz=TZ, village=built.va
    )
    # 丁's deed at 23:59:59 on 31 October is October's; the one at 00:00 on 1 December is
    # December's, though both are 16:00 UTC of the day before in the database.
    assert [(n, r.score) for (_, n), r in zip(names(october.rows), october.rows, strict=True)] == [
        ("丁", 5)
    ]
    assert [
        (n, r.score) for (_, n), r in zip(names(december.rows), december.rows, strict=True)
    ] == [("丁", 2)]


def test_black_list_names_penalties_with_reasons(built: County):
    black = county.black_list(built.factory.session, period=NOV, tz=TZ, village=built.va)
    # 戊's penalty was corrected (in December): it never counted.
    assert [(e.head_name, e.penalised, e.count, e.earned, e.score) for e in black.rows] == [
        ("丙户主", 5, 1, 8, 3)
    ]
    (penalty,) = black.rows[0].penalties
    assert (penalty.points, penalty.reason, penalty.at) == (5, "焚烧秸秆", local(2026, 11, 20, 9))
    assert county.black_list(built.factory.session, period=NOV, tz=TZ, village=built.vb).rows == []


def test_stars_follow_category_points_and_thresholds(built: County):
    table = county.compute_stars(built.factory.session, period=NOV, tz=TZ, village=built.va)
    eco, welfare = (c.id for c in table.scheme.categories)
    got = {r.head_name.removesuffix("户主"): (r.points, r.stars) for r in table.rows}
    assert got == {
        "甲": ({eco: 5, welfare: 4}, [eco, welfare]),
        "乙": ({eco: 5}, [eco]),
        # 5 + 3 - 5: the penalty counts against its own category.
        "丙": ({eco: 3}, []),
        "丁": ({eco: 3}, []),
    }
    assert [r.head_name for r in table.rows][:1] == ["甲户主"]
    one = county.compute_stars(
        built.factory.session, period=NOV, tz=TZ, household_id=built.h["己"].id
    )
    assert [r.star_count for r in one.rows] == [2]


def test_ten_star_list_needs_every_active_category(built: County):
    session = built.factory.session
    village = county.ten_star_list(session, period=NOV, tz=TZ, village=built.va)
    assert [(r.rank, r.head_name, r.score, r.stars) for r in village.rows] == [(1, "甲户主", 9, 2)]
    whole = county.ten_star_list(session, period=NOV, tz=TZ)
    assert names(whole.rows) == [(1, "己"), (2, "甲")]
    # A penalty in the period takes a household off the honour rolls, stars or not.
    built.post("己", local(2026, 11, 29), points=-1)
    assert names(county.ten_star_list(session, period=NOV, tz=TZ).rows) == [(1, "甲")]
    # A retired category no longer counts: one star (ECO) is then every star.
    county.update_category(session, actor=built.admin, code="WELFARE", active=False)
    session.commit()
    assert names(county.ten_star_list(session, period=NOV, tz=TZ, village=built.va).rows) == [
        (1, "甲"),
        (1, "乙"),
    ]


def test_ten_star_list_is_empty_while_a_category_has_no_threshold(built: County):
    session = built.factory.session
    q4 = county.parse_period("2026-Q4")
    result = county.ten_star_list(session, period=q4, tz=TZ, village=built.va)
    assert result.rows == [] and [c.code for c in result.scheme.missing] == ["ECO", "WELFARE"]
    for code, points in (("ECO", 8), ("WELFARE", 4)):
        county.set_threshold(
            session,
            actor=built.admin,
            now=local(2026, 12, 5),
            category_code=code,
            period_kind="quarter",
            points=points,
        )
    session.commit()
    # Over the quarter 丁 has ECO 5 + 3 = 8 and WELFARE 2; 丙 ECO 5 + 3 - 5 = 3.
    table = county.compute_stars(session, period=q4, tz=TZ, village=built.va)
    stars = {r.head_name.removesuffix("户主"): r.star_count for r in table.rows}
    assert stars == {"甲": 1, "乙": 0, "丙": 0, "丁": 1}
    assert county.ten_star_list(session, period=q4, tz=TZ, village=built.va).rows == []


def test_rankings_are_scoped_to_the_cadres_village(built: County):
    session = built.factory.session
    cadre = built.factory.user("cadre", village="VA")
    assert county.ranking_scope(session, actor=cadre, village_code=None).code == "VA"
    assert county.ranking_scope(session, actor=cadre, village_code="VA").code == "VA"
    with pytest.raises(Forbidden):
        county.ranking_scope(session, actor=cadre, village_code="VB")
    assert county.ranking_scope(session, actor=built.admin, village_code=None) is None
    clerk = built.factory.user("clerk", shop="S1")
    with pytest.raises(Forbidden):
        county.ranking_scope(session, actor=clerk, village_code=None)


def test_categories_and_thresholds_are_the_county_offices(built: County):
    session = built.factory.session
    cadre = built.factory.user("cadre", village="VA")
    with pytest.raises(Forbidden):
        county.create_category(session, actor=cadre, now=local(2026, 1, 1), code="X", name="x")
    with pytest.raises(Forbidden):
        county.set_threshold(
            session,
            actor=cadre,
            now=local(2026, 1, 1),
            category_code="ECO",
            period_kind="month",
            points=1,
        )
    for bad in (0, -1, 10**6):
        with pytest.raises(ValidationFailed):
            county.set_threshold(
                session,
                actor=built.admin,
                now=local(2026, 1, 1),
                category_code="ECO",
                period_kind="month",
                points=bad,
            )
    with pytest.raises(ValidationFailed):
        county.set_threshold(
            session,
            actor=built.admin,
            now=local(2026, 1, 1),
            category_code="ECO",
            period_kind="week",
            points=3,
        )
    # A cadre may categorise their village's own rule, not a county-wide one.
    own = ledger.create_rule(
        session,
        actor=cadre,
        now=local(2026, 1, 1),
        code="OWN",
        title="本村",
        points=1,
        village_code="VA",
    )
    county.set_rule_category(session, actor=cadre, rule_id=own.id, category_code="ECO")
    county_rule = next(
        r for r, _c in county.rules_with_categories(session, actor=cadre) if r.village_id is None
    )
    with pytest.raises(Forbidden):
        county.set_rule_category(session, actor=cadre, rule_id=county_rule.id, category_code=None)

"""Ledger services: villages, households, rules, awards, redemptions, corrections, reading."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from accounts.auth import Role
from core.db import utcnow
from core.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    InsufficientPoints,
    NotFound,
    ValidationFailed,
)
from ledger import services as ledger
from ledger.models import Account, Transfer
from tests.conftest import count_rows


def _award(session, actor, household, key, **kw):
    return ledger.post_award(
        session, actor=actor, now=utcnow(), household_id=household.id, idempotency_key=key, **kw
    )


def _redeem(session, actor, household, points, key, shop="S1", **kw):
    return ledger.redeem_points(
        session,
        actor=actor,
        now=utcnow(),
        household_id=household.id,
        shop_code=shop,
        points=points,
        idempotency_key=key,
        **kw,
    )


def _account(session, household) -> Account:
    session.expire_all()
    return ledger.get_household(session, household.id).account


# --- villages and households ---------------------------------------------------------


def test_villages_create_list_update(session, factory):
    admin = factory.admin
    v = ledger.create_village(session, actor=admin, now=utcnow(), code="ZJB", name="郑家榜村")
    ledger.create_village(
        session, actor=admin, now=utcnow(), code="GJY", name="高家堰村", redemption_floor=100
    )
    assert [x.code for x in ledger.list_villages(session)] == ["GJY", "ZJB"]
    assert ledger.get_village(session, "GJY").redemption_floor == 100
    with pytest.raises(Conflict):
        ledger.create_village(session, actor=admin, now=utcnow(), code="ZJB", name="again")
    with pytest.raises(NotFound):
        ledger.get_village(session, "NOPE")
    cadre = factory.user(Role.CADRE, village="ZJB")
    ledger.update_village(session, actor=cadre, code="ZJB", redemption_floor=20)
    assert v.redemption_floor == 20
    with pytest.raises(Forbidden):
        ledger.update_village(session, actor=cadre, code="GJY", name="x")
    with pytest.raises(Forbidden):
        ledger.create_village(session, actor=cadre, now=utcnow(), code="NEW", name="新村")


def test_household_members_and_people_count(session, factory):
    village = factory.village()
    h = ledger.create_household(
        session,
        actor=factory.admin,
        now=utcnow(),
        village_code=village.code,
        head_name=" 覃德华 ",
        members=["覃德华", "向秀英", "  ", "覃小红"],
        address="1组2号",
    )
    assert h.head_name == "覃德华"
    assert [m.name for m in h.members] == ["覃德华", "向秀英", "覃小红"]
    # The head listed among the members is one person, not two.
    assert ledger.people_count(h) == 3
    h2 = ledger.create_household(
        session,
        actor=factory.admin,
        now=utcnow(),
        village_code=village.code,
        head_name="田大勇",
        members=["田小明"],
    )
    assert ledger.people_count(h2) == 2
    # A son named after his father, the head: three people, not two.
    h3 = ledger.create_household(
        session,
        actor=factory.admin,
        now=utcnow(),
        village_code=village.code,
        head_name="田大勇",
        members=["田大勇", "田大勇", "向秀英"],
    )
    assert ledger.people_count(h3) == 3
    assert h.account.balance == 0 and h.account.code == f"household:{h.id}"
    with pytest.raises(ValidationFailed):
        ledger.create_household(
            session, actor=factory.admin, now=utcnow(), village_code=village.code, head_name="  "
        )
    with pytest.raises(NotFound):
        ledger.get_household(session, 10**30)


def test_household_scope_and_search(session, factory):
    factory.village("A")
    b = factory.village("B")
    cadre_a = factory.user(Role.CADRE, village="A")
    h = ledger.create_household(
        session,
        actor=cadre_a,
        now=utcnow(),
        village_code="A",
        head_name="王建国",
        members=["李桂兰"],
    )
    factory.household(b, head="王国强", members=())
    with pytest.raises(Forbidden):
        ledger.create_household(
            session, actor=cadre_a, now=utcnow(), village_code="B", head_name="x"
        )
    rows, total = ledger.search_households(session, actor=cadre_a, q="王")
    assert total == 1 and rows[0].id == h.id
    rows, total = ledger.search_households(session, actor=factory.admin, q="王")
    assert total == 2
    rows, _ = ledger.search_households(session, actor=factory.admin, q="桂兰")
    assert [r.id for r in rows] == [h.id]
    rows, _ = ledger.search_households(session, actor=factory.admin, q=str(h.id))
    assert h.id in [r.id for r in rows]
    # Digits that are not an id the database can hold, or not ASCII, are just text.
    assert ledger.search_households(session, actor=factory.admin, q="99999999999")[1] == 0
    assert ledger.search_households(session, actor=factory.admin, q="²")[1] == 0
    clerk = factory.user(Role.CLERK, shop="S1")
    assert ledger.search_households(session, actor=clerk)[1] == 0


# --- rules -----------------------------------------------------------------------------


def test_rules_county_and_village_precedence(session, factory):
    zjb, gjy = factory.village("ZJB"), factory.village("GJY")
    county = factory.rule("CLEAN_YARD", 3, "household", title="庭院整洁")
    factory.rule("VOLUNTEER", 2, "person")
    own = factory.rule("CLEAN_YARD", 5, "household", village=gjy, title="庭院整洁（高家堰）")
    assert ledger.find_rule(session, "CLEAN_YARD", gjy).id == own.id
    assert ledger.find_rule(session, "CLEAN_YARD", zjb).id == county.id
    in_gjy = {r.code: r.points for r in ledger.rules_in_force(session, "GJY")}
    assert in_gjy == {"CLEAN_YARD": 5, "VOLUNTEER": 2}
    in_zjb = {r.code: r.points for r in ledger.rules_in_force(session, "ZJB")}
    assert in_zjb == {"CLEAN_YARD": 3, "VOLUNTEER": 2}
    assert {r.village_id for r in ledger.rules_in_force(session)} == {None}
    with pytest.raises(NotFound):
        ledger.find_rule(session, "NOPE", zjb)
    with pytest.raises(NotFound):
        ledger.rules_in_force(session, "NOPE")
    # The award uses the village's own rule.
    h = factory.household(gjy)
    assert _award(session, factory.admin, h, "k1", rule_code="CLEAN_YARD").signed_points == 5


def test_rule_scope_and_validation(session, factory):
    factory.village("A")
    factory.village("B")
    cadre = factory.user(Role.CADRE, village="A")

    def make(actor, **kw):
        args = {"code": "R", "title": "t", "points": 2, "per": "household"} | kw
        return ledger.create_rule(session, actor=actor, now=utcnow(), **args)

    assert make(cadre, village_code="A").village.code == "A"
    with pytest.raises(Forbidden):
        make(cadre)
    with pytest.raises(Forbidden):
        make(cadre, village_code="B")
    with pytest.raises(Conflict):
        make(cadre, village_code="A")
    make(factory.admin)
    with pytest.raises(Conflict):
        make(factory.admin)
    for bad in ({"points": 0}, {"points": 10_001}, {"points": -10_001}, {"per": "dog"}):
        with pytest.raises(ValidationFailed):
            make(factory.admin, code="BAD", **bad)


# --- awards and penalties --------------------------------------------------------------


def test_award_by_rule_per_household_and_per_person(session, factory):
    h = factory.household()  # 3 people
    road = factory.rule("ROAD_LAND", 20, "household", title="让地修路")
    factory.rule("VOLUNTEER", 2, "person")
    admin = factory.admin
    p = _award(session, admin, h, "a1", rule_code="ROAD_LAND")
    assert (p.signed_points, p.balance, p.replayed) == (20, 20, False)
    # Without a reason the rule's title is the reason, and the transfer names its rule.
    assert (p.transfer.kind, p.transfer.reason, p.transfer.rule_id) == (
        "award",
        "让地修路",
        road.id,
    )
    assert _award(session, admin, h, "a2", rule_code="VOLUNTEER").signed_points == 2
    p = _award(session, admin, h, "a3", rule_code="VOLUNTEER", persons=3, reason="扫雪")
    assert (p.signed_points, p.balance, p.transfer.persons, p.transfer.reason) == (6, 28, 3, "扫雪")
    assert _award(session, admin, h, "a4", rule_code="ROAD_LAND", persons=1).signed_points == 20
    for key, kw in (
        ("b1", {"rule_code": "VOLUNTEER", "persons": 4}),
        ("b2", {"rule_code": "VOLUNTEER", "persons": 0}),
        ("b3", {"rule_code": "ROAD_LAND", "persons": 2}),
        ("b4", {"rule_code": "VOLUNTEER", "points": 3, "reason": "x"}),
        ("b5", {}),
        ("b6", {"points": 3, "reason": "  "}),
        ("b7", {"points": 3, "reason": "x", "persons": 2}),
        ("b8", {"points": 10_001, "reason": "x"}),
    ):
        with pytest.raises(ValidationFailed):
            _award(session, admin, h, key, **kw)
    with pytest.raises(NotFound):
        _award(session, admin, h, "b9", rule_code="NOPE")
    session.commit()
    account = _account(session, h)
    assert (account.balance, account.earned_total, account.entry_count) == (48, 48, 4)


def test_penalty_overdraws_and_totals(session, factory):
    h = factory.household(balance=3)
    factory.rule("STRAW_BURN", -5, "household")
    admin = factory.admin
    p = _award(session, admin, h, "p1", rule_code="STRAW_BURN")
    assert (p.transfer.kind, p.signed_points, p.balance) == ("penalty", -5, -2)
    p = _award(session, admin, h, "p2", points=-4, reason="乱倒垃圾")
    assert p.balance == -6
    session.commit()
    account = _account(session, h)
    assert (account.balance, account.earned_total, account.penalty_total) == (-6, 3, 9)
    assert account.redeemed_total == 0
    # A household in the red may not spend.
    with pytest.raises(InsufficientPoints):
        _redeem(session, admin, h, 1, "r1")


def test_award_scope_and_inactive_household(session, factory):
    a, b = factory.village("A"), factory.village("B")
    cadre = factory.user(Role.CADRE, village="A")
    ha, hb = factory.household(a), factory.household(b)
    assert _award(session, cadre, ha, "c1", points=5, reason="x").balance == 5
    with pytest.raises(Forbidden):
        _award(session, cadre, hb, "c2", points=5, reason="x")
    for role in (Role.CLERK, Role.MANAGER):
        with pytest.raises(Forbidden):
            _award(session, factory.user(role, shop="S1"), ha, "c3", points=5, reason="x")
    ha.status = "moved"
    session.commit()
    with pytest.raises(Conflict):
        _award(session, factory.admin, ha, "c4", points=5, reason="x")


# --- idempotency -----------------------------------------------------------------------


def test_idempotent_award_replays_and_conflicts(session, factory):
    h = factory.household()
    first = _award(session, factory.admin, h, "same", points=7, reason="好人好事")
    session.commit()
    before = count_rows(Transfer)
    again = _award(session, factory.admin, h, "same", points=7, reason="好人好事")
    assert again.replayed and again.transfer.id == first.transfer.id
    assert (again.signed_points, again.balance) == (7, 7)
    session.commit()
    assert count_rows(Transfer) == before
    assert _account(session, h).balance == 7
    with pytest.raises(IdempotencyConflict):
        _award(session, factory.admin, h, "same", points=8, reason="好人好事")
    with pytest.raises(IdempotencyConflict):
        _award(session, factory.admin, h, "same", points=7, reason="别的")
    # Keys are per kind of operation: a redemption may reuse an award's key.
    assert not _redeem(session, factory.admin, h, 7, "same").replayed


def test_replay_does_not_bypass_village_scope(session, factory):
    factory.village("A")
    b = factory.village("B")
    hb = factory.household(b)
    _award(session, factory.admin, hb, "k", points=5, reason="x")
    session.commit()
    cadre_a = factory.user(Role.CADRE, village="A")
    with pytest.raises(Forbidden):
        _award(session, cadre_a, hb, "k", points=5, reason="x")


# --- redemptions, refunds ---------------------------------------------------------------


def test_redeem_never_overdraws(session, factory):
    h = factory.household(balance=30)
    clerk = factory.user(Role.CLERK, shop="S1")
    p = _redeem(session, clerk, h, 30, "r1", sale_id=7)
    assert (p.transfer.kind, p.signed_points, p.balance, p.transfer.sale_id) == (
        "redemption",
        -30,
        0,
        7,
    )
    with pytest.raises(InsufficientPoints) as exc:
        _redeem(session, clerk, h, 1, "r2")
    assert exc.value.extra["available"] == 0 and exc.value.extra["shortfall"] == 1
    with pytest.raises(Forbidden):
        _redeem(session, clerk, h, 1, "r3", shop="S2")
    with pytest.raises(ValidationFailed):
        _redeem(session, clerk, h, 0, "r4")
    session.commit()
    account = _account(session, h)
    assert (account.balance, account.redeemed_total, account.entry_count) == (0, 30, 2)


def test_redeem_respects_village_floor(session, factory):
    village = factory.village(floor=100)
    h = factory.household(village, balance=150)
    admin = factory.admin
    assert _redeem(session, admin, h, 50, "f1").balance == 100
    with pytest.raises(InsufficientPoints) as exc:
        _redeem(session, admin, h, 1, "f2")
    assert exc.value.extra == {
        "needed": 1,
        "available": 0,
        "balance": 100,
        "floor": 100,
        "shortfall": 1,
    }
    # A penalty still goes through the floor, and below zero.
    assert _award(session, admin, h, "f3", points=-120, reason="x").balance == -20


def test_refund_points(session, factory):
    h = factory.household(balance=100)
    manager = factory.user(Role.MANAGER, shop="S1")
    _redeem(session, manager, h, 70, "r1", sale_id=1)
    p = ledger.refund_points(
        session,
        actor=manager,
        now=utcnow(),
        household_id=h.id,
        shop_code="S1",
        points=70,
        idempotency_key="rf1",
        sale_id=1,
        reason="退货",
    )
    assert (p.transfer.kind, p.signed_points, p.balance) == ("refund", 70, 100)
    with pytest.raises(Forbidden):
        ledger.refund_points(
            session,
            actor=manager,
            now=utcnow(),
            household_id=h.id,
            shop_code="S2",
            points=1,
            idempotency_key="rf2",
        )
    session.commit()
    assert _account(session, h).redeemed_total == 0


# --- corrections ------------------------------------------------------------------------


def _correct(session, actor, transfer_id, key, reason="录入错误"):
    return ledger.post_correction(
        session,
        actor=actor,
        now=utcnow(),
        transfer_id=transfer_id,
        reason=reason,
        idempotency_key=key,
    )


def test_correction_reverses_award_once(session, factory):
    h = factory.household(balance=10)
    admin = factory.admin
    wrong = _award(session, admin, h, "w", points=20, reason="x").transfer.id
    p = _correct(session, admin, wrong, "c1")
    assert (p.transfer.kind, p.signed_points, p.balance, p.transfer.reverses_id) == (
        "correction",
        -20,
        10,
        wrong,
    )
    assert _correct(session, admin, wrong, "c1").replayed
    with pytest.raises(Conflict):
        _correct(session, admin, wrong, "c2")
    # Correcting a correction is refused: corrections themselves are not undone.
    with pytest.raises(Conflict):
        _correct(session, admin, p.transfer.id, "c3")
    with pytest.raises(NotFound):
        _correct(session, admin, 10**9, "c4")
    session.commit()
    account = _account(session, h)
    assert (account.balance, account.earned_total, account.penalty_total) == (10, 10, 0)


def test_correction_reverses_penalty_and_may_overdraw(session, factory):
    h = factory.household(balance=5)
    admin = factory.admin
    penalty = _award(session, admin, h, "p", points=-3, reason="x").transfer.id
    p = _correct(session, admin, penalty, "c1")
    assert (p.signed_points, p.balance) == (3, 5)
    _redeem(session, admin, h, 5, "r")
    # Taking back an award already spent leaves the household below zero.
    seed = session.scalar(
        select(Transfer.id).where(Transfer.chain_account_id == h.account.id).order_by(Transfer.id)
    )
    assert _correct(session, admin, seed, "c2").balance == -5
    session.commit()
    account = _account(session, h)
    assert (account.earned_total, account.penalty_total, account.redeemed_total) == (0, 0, 5)


def test_correction_refuses_redemptions_and_other_villages(session, factory):
    factory.village("A")
    b = factory.village("B")
    hb = factory.household(b, balance=10)
    redemption = _redeem(session, factory.admin, hb, 5, "r").transfer.id
    with pytest.raises(Conflict):
        _correct(session, factory.admin, redemption, "c1")
    award_id = session.scalar(select(Transfer.id).where(Transfer.kind == "award"))
    with pytest.raises(Forbidden):
        _correct(session, factory.user(Role.CADRE, village="A"), award_id, "c2")
    with pytest.raises(ValidationFailed):
        _correct(session, factory.admin, award_id, "c3", reason="  ")


# --- reading ----------------------------------------------------------------------------


def _mixed_history(session, factory):
    h = factory.household(balance=100)  # award +100
    admin = factory.admin
    factory.rule("STRAW_BURN", -5, "household")
    penalty = _award(session, admin, h, "m1", rule_code="STRAW_BURN").transfer.id  # -5 -> 95
    _redeem(session, admin, h, 70, "m2", shop="GJY", sale_id=42)  # -70 -> 25
    ledger.refund_points(
        session,
        actor=admin,
        now=utcnow(),
        household_id=h.id,
        shop_code="GJY",
        points=10,
        idempotency_key="m3",
        sale_id=42,
    )  # +10 -> 35
    _correct(session, admin, penalty, "m4")  # +5 -> 40
    session.commit()
    return h


def test_statement_newest_first_with_paging(session, factory):
    h = _mixed_history(session, factory)
    entries = ledger.household_statement(session, h.id)
    assert [(e.kind, e.points, e.balance_after, e.shop_code) for e in entries] == [
        ("correction", 5, 40, None),
        ("refund", 10, 35, "GJY"),
        ("redemption", -70, 25, "GJY"),
        ("penalty", -5, 95, None),
        ("award", 100, 100, None),
    ]
    assert entries[2].sale_id == 42 and entries[3].reason
    ids = [e.id for e in entries]
    assert ids == sorted(ids, reverse=True)
    page1 = ledger.household_statement(session, h.id, limit=2)
    page2 = ledger.household_statement(session, h.id, limit=2, before=page1[-1].id)
    page3 = ledger.household_statement(session, h.id, limit=2, before=page2[-1].id)
    assert [e.id for e in page1 + page2 + page3] == ids
    assert ledger.household_statement(session, h.id, before=ids[-1]) == []
    other = factory.household()
    assert ledger.household_statement(session, other.id) == []
    with pytest.raises(NotFound):
        ledger.household_statement(session, 10**6)


def test_system_balances_and_verify_after_mixed_history(session, factory):
    _mixed_history(session, factory)
    factory.household(balance=7)
    assert ledger.system_balance(session, ledger.ISSUANCE_CODE) == -107
    assert ledger.system_balance(session, ledger.PENALTY_CODE) == 0
    assert ledger.system_balance(session, ledger.shop_account_code("GJY")) == 60
    assert ledger.system_balance(session, "shop:NONE") == 0
    # Double entry: every point is somewhere.
    households = sum(a.balance for a in session.scalars(select(Account)) if a.household_id)
    system = sum(
        ledger.system_balance(session, code)
        for code in (ledger.ISSUANCE_CODE, ledger.PENALTY_CODE, "shop:GJY")
    )
    assert households == 47 and households + system == 0
    report = ledger.verify_ledger(session)
    assert report.ok, report.problems
    assert report.transfers_checked == 6 and report.first_bad_id is None

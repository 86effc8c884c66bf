"""A hand-built county whose stars, red list, black list and ten-star list are known."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.auth import Role, User
from county import services as county
from ledger import services as ledger
from ledger.models import Household, Village
from tests.factories import Factory
from tests.helpers.pages import sign_in

TZ = ZoneInfo("Asia/Shanghai")
_keys = itertools.count(1)


def local(*args: int) -> datetime:
    """A moment of the county's local time, as the aware datetime services take."""
    return datetime(*args, tzinfo=TZ).astimezone(UTC)


@dataclass
class County:
    factory: Factory
    admin: User
    va: Village
    vb: Village
    h: dict[str, Household] = field(default_factory=dict)
    transfers: dict[str, int] = field(default_factory=dict)

    def post(
        self,
        who: str,
        at: datetime,
        *,
        rule: str | None = None,
        points: int | None = None,
        persons: int | None = None,
        label: str | None = None,
    ) -> int:
        posting = ledger.post_award(
            self.factory.session,
            actor=self.admin,
            now=at,
            household_id=self.h[who].id,
            idempotency_key=f"county-{next(_keys)}",
            rule_code=rule,
            points=points,
            persons=persons,
            reason=None if rule else "临时扣分" if (points or 0) < 0 else "临时加分",
        )
        self.factory.session.commit()
        if label:
            self.transfers[label] = posting.transfer.id
        return posting.transfer.id

    def correct(self, label: str, at: datetime) -> None:
        ledger.post_correction(
            self.factory.session,
            actor=self.admin,
            now=at,
            transfer_id=self.transfers[label],
            reason="录入错误",
            idempotency_key=f"fix-{next(_keys)}",
        )
        self.factory.session.commit()


def build_county(factory: Factory) -> County:
    """Two villages, two categories with monthly thresholds, and November 2026's deeds.

    Known answers for 2026-11 in village VA (scores: earned minus penalties):
      甲 9 (ECO 5 + WELFARE 4: both stars), 乙 9 (ECO 5, uncategorised 4: one star),
      戊 4 (its wrong award and wrong penalty corrected), 丁 3 (at 23:59 on the 30th),
      丙 8 - 5 = 3 but penalised: black list, not red list; ECO net 3, no star.
    Village VB: 己 13 with both stars.
    """
    session = factory.session
    admin = factory.admin
    now = local(2026, 10, 1)
    va, vb = factory.village("VA", name="甲村"), factory.village("VB", name="乙村")
    eco = county.create_category(session, actor=admin, now=now, code="ECO", name="生态环保")
    county.create_category(session, actor=admin, now=now, code="WELFARE", name="公益事业")
    county.set_threshold(
        session, actor=admin, now=now, category_code="ECO", period_kind="month", points=5
    )
    county.set_threshold(
        session, actor=admin, now=now, category_code="WELFARE", period_kind="month", points=4
    )
    rules = {
        "PLANT": (5, "household", "ECO", "植树造林"),
        "CLEAN": (3, "household", "ECO", "庭院整洁"),
        "VOLUNTEER": (2, "person", "WELFARE", "参加志愿服务"),
        "BURN": (-5, "household", "ECO", "焚烧秸秆"),
        "MISC": (4, "household", None, "其他好事"),
    }
    for code, (points, per, category, title) in rules.items():
        rule = factory.rule(code, points, per, title=title)
        if category:
            county.set_rule_category(session, actor=admin, rule_id=rule.id, category_code=category)
    session.commit()
    assert eco.id
    c = County(factory, admin, va, vb)
    for name in ("甲", "乙", "丙", "丁", "戊"):
        c.h[name] = factory.household(va, head=f"{name}户主", members=(f"{name}户主", "家人"))
    c.h["己"] = factory.household(vb, head="己户主", members=("己户主", "家人"))

    mid = local(2026, 11, 15, 10, 0)
    c.post("甲", mid, rule="PLANT")
    c.post("甲", mid, rule="VOLUNTEER", persons=2)
    c.post("乙", mid, rule="MISC")
    c.post("乙", mid, rule="PLANT")
    c.post("丙", mid, rule="PLANT")
    c.post("丙", mid, rule="CLEAN")
    c.post("丙", local(2026, 11, 20, 9, 0), rule="BURN", label="burn")
    # The period's edges, at local midnight.
    c.post("丁", local(2026, 10, 31, 23, 59, 59), rule="PLANT")
    c.post("丁", local(2026, 11, 30, 23, 59, 59), rule="CLEAN")
    c.post("丁", local(2026, 12, 1, 0, 0, 0), rule="VOLUNTEER")
    # A wrong award and a wrong penalty, both corrected (the penalty only in December).
    c.post("戊", mid, rule="MISC")
    c.post("戊", mid, rule="PLANT", label="wrong-award")
    c.post("戊", mid, points=-3, label="wrong-penalty")
    c.correct("wrong-award", local(2026, 11, 16))
    c.correct("wrong-penalty", local(2026, 12, 2))
    c.post("己", mid, rule="PLANT")
    c.post("己", mid, rule="VOLUNTEER", persons=2)
    c.post("己", mid, rule="MISC")
    return c


@pytest.fixture
def built(factory: Factory) -> County:
    return build_county(factory)


def names(rows: Any) -> list[tuple[int, str]]:
    return [(r.rank, r.head_name.removesuffix("户主")) for r in rows]


def login(client: Any, user: User) -> None:
    sign_in(client, user.username)


def make_user(factory: Factory, role: Role, **scope: Any) -> User:
    return factory.user(role, **scope)

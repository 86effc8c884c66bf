"""Test factories: users with tokens, villages, households with points, rules, shops."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from config.auth import Role, User, create_user, issue_token
from config.db import utcnow
from inventory import services as inventory
from ledger import services as ledger
from ledger.models import Household, PointRule, Village

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


class Factory:
    """Builds rows through the real services, so tests start from states the app can reach."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._admin: User | None = None

    @property
    def admin(self) -> User:
        if self._admin is None:
            self._admin = self.user(Role.ADMIN)
        return self._admin

    def user(
        self,
        role: Role | str,
        *,
        shop: str | None = None,
        village: str | None = None,
        username: str | None = None,
        password: str = PASSWORD,
    ) -> User:
        user = create_user(
            self.session,
            username=username or f"{role}-{next(_seq)}",
            password=password,
            role=str(role),
            shop_code=shop,
            village_code=village,
        )
        self.session.commit()
        return user

    def token(self, user: User) -> str:
        token, _row = issue_token(self.session, user, now=utcnow(), ttl=timedelta(hours=1))
        self.session.commit()
        return token

    def headers(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def village(self, code: str | None = None, *, floor: int = 0, name: str = "测试村") -> Village:
        village = ledger.create_village(
            self.session,
            actor=self.admin,
            now=utcnow(),
            code=code or f"V{next(_seq)}",
            name=name,
            redemption_floor=floor,
        )
        self.session.commit()
        return village

    def household(
        self,
        village: Village | None = None,
        *,
        head: str = "覃德华",
        members: tuple[str, ...] = ("覃德华", "向秀英", "覃小红"),
        balance: int = 0,
    ) -> Household:
        village = village or self.village()
        household = ledger.create_household(
            self.session,
            actor=self.admin,
            now=utcnow(),
            village_code=village.code,
            head_name=head,
            members=members,
        )
        if balance:
            ledger.post_award(
                self.session,
                actor=self.admin,
                now=utcnow(),
                household_id=household.id,
                idempotency_key=f"seed-{next(_seq)}",
                points=balance,
                reason="开户积分",
            )
        self.session.commit()
        return household

    def rule(
        self,
        code: str = "VOLUNTEER",
        points: int = 2,
        per: str = "person",
        village: Village | None = None,
        title: str = "参加志愿服务",
    ) -> PointRule:
        rule = ledger.create_rule(
            self.session,
            actor=self.admin,
            now=utcnow(),
            code=code,
            title=title,
            points=points,
            per=per,
            village_code=village.code if village else None,
        )
        self.session.commit()
        return rule

    def shop(self, code: str | None = None, name: str = "高家堰诚信超市") -> Any:
        shop = inventory.create_shop(
            self.session, actor=self.admin, now=utcnow(), code=code or f"S{next(_seq)}", name=name
        )
        self.session.commit()
        return shop

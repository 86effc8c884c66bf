"""Test factories: users with tokens, villages, households with points, rules, shops."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from accounts.auth import Role, User, create_user, issue_token
from core.db import utcnow
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

    def product(
        self,
        sku: str | None = None,
        *,
        name: str = "大米 10斤",
        points_price: int = 70,
        unit: str = "袋",
        barcode: str | None = None,
        category: str | None = "粮油",
        name_en: str | None = None,
    ) -> Any:
        product = inventory.create_product(
            self.session,
            actor=self.admin,
            now=utcnow(),
            sku=sku or f"P{next(_seq)}",
            name=name,
            points_price=points_price,
            unit=unit,
            barcode=barcode,
            category=category,
            name_en=name_en,
        )
        self.session.commit()
        return product

    def receive(self, shop: Any, *lines: tuple[Any, int], reference: str = "送货单-1") -> Any:
        """Put goods on a shop's shelves: lines of (product or sku, qty)."""
        operation = inventory.receive_stock(
            self.session,
            actor=self.admin,
            now=utcnow(),
            shop_code=shop.code,
            lines=[(getattr(p, "sku", p), qty) for p, qty in lines],
            reference=reference,
            idempotency_key=f"receive-{next(_seq)}",
        )
        self.session.commit()
        return operation

    def card(self, household: Household | None = None, *, actor: User | None = None) -> Any:
        """Issue a member card; returns (card, the exact text of its QR code)."""
        from flask import current_app

        from member_cards import services as cards
        from member_cards.signing import keyring_from_config

        household = household or self.household()
        card = cards.issue_card(
            self.session, actor=actor or self.admin, now=utcnow(), household_id=household.id
        )
        payload = cards.card_payload(card, keyring_from_config(current_app.config))
        self.session.commit()
        return card, payload


def ensure_shop_account(session: Session, shop_code: str) -> int:
    """The shop's redemptions account, made before threads race to make it first."""
    from ledger.models import AccountKind

    account_id = ledger._system_account(
        session, ledger.shop_account_code(shop_code), AccountKind.SHOP
    )
    session.commit()
    return account_id


def sell(
    session: Session,
    *,
    actor: User,
    shop_code: str,
    household: Household,
    lines: list[tuple[str, int]],
    key: str | None = None,
) -> Any:
    """A committed sale by household id through the counter's service: lines of (sku, qty)."""
    from flask import current_app

    from core.timeutil import local_tz
    from member_cards.signing import keyring_from_config
    from pos import services as pos

    result = pos.record_sale(
        session,
        actor=actor,
        now=utcnow(),
        tz=local_tz(),
        keyring=keyring_from_config(current_app.config),
        shop_code=shop_code,
        lines=[pos.LineRequest(qty=qty, sku=sku) for sku, qty in lines],
        idempotency_key=key or f"sale-{next(_seq)}",
        household_id=household.id,
    )
    session.commit()
    return result.sale

"""A county with a shop node: village ZJB's home shop GJY runs one, BSP is another shop."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from accounts.auth import Role
from core.db import db, utcnow
from ledger import services as ledger
from nodes import chain
from nodes import services as nodes
from tests.factories import Factory

_keys = itertools.count(1)


@dataclass
class NodeClient:
    """What a shop node keeps: its token, and the head of its chain as it computed it."""

    shop_code: str
    headers: dict[str, str]
    seq: int = 0
    head: str = chain.GENESIS
    sent: list[dict[str, Any]] = field(default_factory=list)

    def body(
        self,
        household_id: int,
        lines: list[tuple[str, int]],
        *,
        seq: int | None = None,
        prev_hash: str | None = None,
        key: str | None = None,
        made_at: datetime | None = None,
        receipt_no: str | None = None,
    ) -> dict[str, Any]:
        """The next offline sale as the node would send it (not yet counted as sent)."""
        seq = self.seq + 1 if seq is None else seq
        made_at = made_at or datetime(2026, 12, 3, 9, 30, 0, tzinfo=UTC) + timedelta(minutes=seq)
        return {
            "seq": seq,
            "prev_hash": self.head if prev_hash is None else prev_hash,
            "idempotency_key": key or f"node-{uuid.uuid4().hex}",
            "receipt_no": receipt_no or f"{self.shop_code}-20261203-L{seq:04d}",
            "made_at": made_at.astimezone(CHINA).isoformat(),
            "household_id": household_id,
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
        }

    def accepted(self, body: dict[str, Any]) -> str:
        """Advance the node's own head past a sale the county took; its hash."""
        fields = chain.sale_fields(
            shop_code=self.shop_code,
            seq=body["seq"],
            idempotency_key=body["idempotency_key"],
            receipt_no=body["receipt_no"],
            made_at=datetime.fromisoformat(body["made_at"]),
            household_id=body["household_id"],
            card_digest=body.get("card_digest"),
            lines=body["lines"],
        )
        self.head = chain.sale_hash(body["prev_hash"], fields)
        self.seq = body["seq"]
        self.sent.append(body)
        return self.head


CHINA = timezone(timedelta(hours=8))


@dataclass
class County:
    factory: Factory
    household: Any
    village: Any
    node: NodeClient
    node_id: int
    node_shop_id: int
    clerk_other: dict[str, str]
    clerk_home: dict[str, str]


def register(factory: Factory, shop_code: str, username: str) -> tuple[Any, str]:
    node, token = nodes.register_node(
        db.session,
        now=utcnow(),
        shop_code=shop_code,
        username=username,
        token_ttl=timedelta(hours=1),
    )
    db.session.commit()
    return node, token


@pytest.fixture
def county(factory: Factory) -> County:
    home = factory.shop("GJY", name="高家堰超市")
    other = factory.shop("BSP", name="白沙坪诚信超市")
    village = factory.village("ZJB", name="郑家榜村", floor=100)
    ledger.update_village(db.session, actor=factory.admin, code="ZJB", shop_code="GJY")
    db.session.commit()
    rice = factory.product("RICE-10", name="大米", points_price=70)
    factory.product("SOAP", name="肥皂", points_price=10)
    factory.receive(home, (rice, 100), ("SOAP", 500))
    factory.receive(other, (rice, 100), ("SOAP", 500))
    household = factory.household(village, balance=600)
    node, token = register(factory, "GJY", "node-gjy")
    return County(
        factory=factory,
        household=household,
        village=village,
        node=NodeClient("GJY", {"Authorization": f"Bearer {token}"}),
        node_id=node.id,
        node_shop_id=home.id,
        clerk_other=factory.headers(factory.user(Role.CLERK, shop="BSP")),
        clerk_home=factory.headers(factory.user(Role.CLERK, shop="GJY")),
    )


def through_node(county: County, headers: dict[str, str]) -> dict[str, str]:
    """A clerk's request as the home shop's node passes it through (its own token added)."""
    token = county.node.headers["Authorization"].partition(" ")[2]
    return {**headers, "X-Shop-Node-Token": token}


def online_sale(client: Any, headers: dict[str, str], shop: str, household_id: int, lines):
    return client.post(
        f"/api/v1/shops/{shop}/sales",
        json={
            "household_id": household_id,
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
            "idempotency_key": f"online-{next(_keys)}-{uuid.uuid4().hex[:8]}",
        },
        headers=headers,
    )


def balance(household_id: int) -> int:
    db.session.rollback()
    household = ledger.get_household(db.session, household_id)
    value = household.account.balance
    db.session.rollback()
    return value

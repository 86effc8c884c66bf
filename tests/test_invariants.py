"""Stateful property test: random awards, sales, returns and stock moves never break the books.

Hypothesis drives the public API (through the test client) with awards, penalties, sales,
returns, voids, receipts, adjustments, counts and transfers, with replays of earlier
requests and reused keys mixed in. After every step the ledger and the stock journal are
checked against each other from the database itself, not from a model in the test.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter as Tally
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from core.db import db, utcnow
from core.timeutil import business_day, local_tz
from inventory.models import Product, Shop, StockLevel, StockMovement
from ledger.models import Account, AccountKind, Transfer, TransferKind
from ledger.services import ensure_system_accounts, verify_ledger
from pos.models import Sale, SaleLine, SaleReturn, SaleReturnLine
from pos.services import daily_report
from tests.factories import Factory

SKUS = ["RICE", "OIL", "SOAP"]
PRICES = {"RICE": 40, "OIL": 90, "SOAP": 3}
SHOPS = ["GJY", "ZJB"]
# Bounded for `make test`; `make fuzz` raises it through the environment.
EXAMPLES = int(os.environ.get("INVARIANT_EXAMPLES", "12"))
STEPS = int(os.environ.get("INVARIANT_STEPS", "30"))

STEP_COUNT = Tally()


def _fingerprint() -> tuple[Any, ...]:
    """Everything a refused request must leave exactly as it was."""
    db.session.rollback()
    try:
        return (
            db.session.scalar(select(func.count(Transfer.id))),
            db.session.scalar(select(func.count(StockMovement.id))),
            db.session.scalar(select(func.count(Sale.id))),
            db.session.scalar(select(func.count(SaleReturn.id))),
            tuple(db.session.execute(select(Account.id, Account.balance).order_by(Account.id))),
            tuple(
                db.session.execute(
                    select(StockLevel.shop_id, StockLevel.product_id, StockLevel.on_hand).order_by(
                        StockLevel.shop_id, StockLevel.product_id
                    )
                )
            ),
        )
    finally:
        db.session.rollback()


def _on_hand(shop: str, sku: str) -> int:
    db.session.rollback()
    try:
        on_hand = db.session.scalar(
            select(StockLevel.on_hand)
            .join(Shop, Shop.id == StockLevel.shop_id)
            .join(Product, Product.id == StockLevel.product_id)
            .where(Shop.code == shop, Product.sku == sku)
        )
        return on_hand or 0
    finally:
        db.session.rollback()


def _altered(body: dict[str, Any]) -> dict[str, Any]:
    """The same request with one number changed: what a buggy client might resend."""
    other = {**body, "lines": [dict(line) for line in body.get("lines", [])]}
    if other["lines"]:
        line = other["lines"][0]
        field = next(name for name in ("qty", "delta", "counted") if name in line)
        line[field] += 1 if line[field] != -1 else -1
    elif "points" in other:
        # Away from zero: a zero-point award is malformed, not a different request.
        other["points"] += 1 if other["points"] > 0 else -1
    else:
        other["reason"] = body["reason"] + "!"
    if not other["lines"]:
        del other["lines"]
    return other


class Books(RuleBasedStateMachine):
    app: Flask

    sales = Bundle("sales")

    def __init__(self) -> None:
        super().__init__()
        self.world = _fresh_world()
        self.client = self.app.test_client()
        self.sent: list[tuple[str, dict[str, Any], dict[str, str], int, Any]] = []

    # --- sending ------------------------------------------------------------------

    def post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        before = _fingerprint()
        response = self.client.post(url, json=body, headers=headers)
        assert response.status_code < 500, (url, body, response.get_data(as_text=True))
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json"
            assert _fingerprint() == before, f"refused {url} changed something"
        elif "idempotency_key" in body:
            self.sent.append((url, body, headers, response.status_code, response.get_json()))
        STEP_COUNT[url.rsplit("/", 1)[-1]] += 1
        return response

    def key(self) -> str:
        return uuid.uuid4().hex

    # --- the ledger ---------------------------------------------------------------

    @rule(hh=st.integers(0, 2), points=st.integers(1, 120))
    def award(self, hh: int, points: int) -> None:
        body = {
            "household_id": self.world["households"][hh],
            "points": points,
            "reason": "好人好事",
            "idempotency_key": self.key(),
        }
        assert self.post("/api/v1/awards", body, self.world["admin"]).status_code == 201

    @rule(hh=st.integers(0, 2), points=st.integers(1, 60))
    def penalty(self, hh: int, points: int) -> None:
        body = {
            "household_id": self.world["households"][hh],
            "points": -points,
            "reason": "乱扔垃圾",
            "idempotency_key": self.key(),
        }
        assert self.post("/api/v1/awards", body, self.world["admin"]).status_code == 201

    # --- the counter --------------------------------------------------------------

    @rule(
        target=sales,
        hh=st.integers(0, 2),
        shop=st.sampled_from(SHOPS),
        lines=st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=4),
    )
    def sell(self, hh: int, shop: str, lines: list[tuple[str, int]]) -> Any:
        """A sale; the bundle keeps the ids of those that went through."""
        body = {
            "household_id": self.world["households"][hh],
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
            "idempotency_key": self.key(),
        }
        response = self.post(f"/api/v1/shops/{shop}/sales", body, self.world["clerks"][shop])
        if response.status_code == 201:
            data = response.get_json()
            assert data["total_points"] == sum(PRICES[sku] * qty for sku, qty in lines)
            return data["sale_id"]
        assert response.get_json()["code"] in ("insufficient_points", "out_of_stock")
        return multiple()

    @rule(sale=sales, data=st.data(), qty=st.integers(1, 3))
    def take_back(self, sale: int, data: st.DataObject, qty: int) -> None:
        shop = self._shop_of(sale)
        # Mostly goods that are on the receipt; now and then one that is not.
        sku = data.draw(st.sampled_from([*self._skus_of(sale), "SOAP"]))
        body = {
            "lines": [{"sku": sku, "qty": qty}],
            "reason": "退货",
            "idempotency_key": self.key(),
        }
        response = self.post(f"/api/v1/sales/{sale}/returns", body, self.world["managers"][shop])
        if response.status_code != 201:
            assert response.get_json()["code"] in ("return_exceeds_sale", "conflict")

    @rule(sale=consumes(sales))
    def void(self, sale: int) -> None:
        shop = self._shop_of(sale)
        body = {"reason": "扫错了", "idempotency_key": self.key()}
        response = self.post(f"/api/v1/sales/{sale}/void", body, self.world["managers"][shop])
        if response.status_code != 201:
            assert response.get_json()["code"] == "conflict"

    # --- stock --------------------------------------------------------------------

    @rule(shop=st.sampled_from(SHOPS), sku=st.sampled_from(SKUS), qty=st.integers(1, 20))
    def receive(self, shop: str, sku: str, qty: int) -> None:
        body = {
            "reference": "送货单",
            "lines": [{"sku": sku, "qty": qty}],
            "idempotency_key": self.key(),
        }
        url = f"/api/v1/shops/{shop}/stock/receipts"
        assert self.post(url, body, self.world["managers"][shop]).status_code == 201

    @rule(
        shop=st.sampled_from(SHOPS),
        sku=st.sampled_from(SKUS),
        delta=st.integers(-4, 4).filter(bool),
    )
    def adjust(self, shop: str, sku: str, delta: int) -> None:
        reason = "damaged" if delta < 0 else "found"
        body = {
            "lines": [{"sku": sku, "delta": delta, "reason": reason}],
            "idempotency_key": self.key(),
        }
        url = f"/api/v1/shops/{shop}/stock/adjustments"
        enough = _on_hand(shop, sku) + delta >= 0
        response = self.post(url, body, self.world["managers"][shop])
        if enough:
            assert response.status_code == 201, response.get_json()
        else:
            assert response.status_code == 409, response.get_json()
            assert response.get_json()["code"] == "out_of_stock"

    @rule(shop=st.sampled_from(SHOPS), sku=st.sampled_from(SKUS), counted=st.integers(0, 25))
    def count(self, shop: str, sku: str, counted: int) -> None:
        body = {"lines": [{"sku": sku, "counted": counted}], "idempotency_key": self.key()}
        url = f"/api/v1/shops/{shop}/stock/counts"
        assert self.post(url, body, self.world["managers"][shop]).status_code == 201

    @rule(sku=st.sampled_from(SKUS), qty=st.integers(1, 6), forward=st.booleans())
    def transfer(self, sku: str, qty: int, forward: bool) -> None:
        source, dest = SHOPS if forward else SHOPS[::-1]
        body = {
            "to_shop": dest,
            "lines": [{"sku": sku, "qty": qty}],
            "idempotency_key": self.key(),
        }
        url = f"/api/v1/shops/{source}/stock/transfers"
        response = self.post(url, body, self.world["managers"][source])
        if response.status_code != 201:
            assert response.get_json()["code"] == "out_of_stock"

    # --- retries ------------------------------------------------------------------

    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """A retry with the same key and body: the first answer again, nothing moves."""
        if not self.sent:
            return
        url, body, headers, status, first = data.draw(st.sampled_from(self.sent))
        before = _fingerprint()
        again = self.client.post(url, json=body, headers=headers)
        assert again.status_code == status
        assert again.get_json() == first
        assert _fingerprint() == before
        STEP_COUNT["replay"] += 1

    @rule(data=st.data())
    def reuse_key(self, data: st.DataObject) -> None:
        """The same key with another body is refused, and nothing moves."""
        if not self.sent:
            return
        url, body, headers, _status, _first = data.draw(st.sampled_from(self.sent))
        other = _altered(body)
        before = _fingerprint()
        response = self.client.post(url, json=other, headers=headers)
        assert response.status_code == 409, response.get_json()
        assert response.get_json()["code"] == "idempotency_conflict"
        assert _fingerprint() == before
        STEP_COUNT["reuse_key"] += 1

    # --- invariants ---------------------------------------------------------------

    def _skus_of(self, sale_id: int) -> list[str]:
        db.session.rollback()
        try:
            return list(
                db.session.scalars(
                    select(SaleLine.sku).where(SaleLine.sale_id == sale_id).order_by(SaleLine.id)
                )
            )
        finally:
            db.session.rollback()

    def _shop_of(self, sale_id: int) -> str:
        db.session.rollback()
        try:
            return db.session.scalar(select(Sale.shop_code).where(Sale.id == sale_id))
        finally:
            db.session.rollback()

    @invariant()
    def the_books_balance(self) -> None:
        db.session.rollback()
        try:
            self._check_ledger()
            self._check_stock()
            self._check_sales()
        finally:
            db.session.rollback()

    def _check_ledger(self) -> None:
        session = db.session
        signed: dict[int, int] = {}
        for debit, credit, amount in session.execute(
            select(Transfer.debit_account_id, Transfer.credit_account_id, Transfer.amount)
        ):
            assert amount > 0
            signed[debit] = signed.get(debit, 0) - amount
            signed[credit] = signed.get(credit, 0) + amount
        # Double entry: what left some account arrived in another.
        assert sum(signed.values()) == 0
        for account in session.scalars(
            select(Account).where(Account.kind == AccountKind.HOUSEHOLD)
        ):
            assert account.balance == signed.get(account.id, 0), account.code
        # No redemption ever took a household below zero (these villages have no floor).
        lowest = session.scalar(
            select(func.min(Transfer.balance_after)).where(Transfer.kind == TransferKind.REDEMPTION)
        )
        assert lowest is None or lowest >= 0
        assert verify_ledger(session).ok

    def _check_stock(self) -> None:
        session = db.session
        journal = {
            (shop_id, product_id): total
            for shop_id, product_id, total in session.execute(
                select(
                    StockMovement.shop_id,
                    StockMovement.product_id,
                    func.sum(StockMovement.quantity),
                ).group_by(StockMovement.shop_id, StockMovement.product_id)
            )
        }
        for level in session.scalars(select(StockLevel)):
            assert level.on_hand >= 0
            assert level.on_hand == journal.get((level.shop_id, level.product_id), 0)

    def _check_sales(self) -> None:
        session = db.session
        for sale in session.scalars(select(Sale)):
            assert sale.total_points == sum(line.points for line in sale.lines)
            assert all(line.points == line.qty * line.points_each for line in sale.lines)
            redeemed = session.scalar(
                select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                    Transfer.sale_id == sale.id, Transfer.kind == TransferKind.REDEMPTION
                )
            )
            refunded = session.scalar(
                select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                    Transfer.sale_id == sale.id, Transfer.kind == TransferKind.REFUND
                )
            )
            assert redeemed == sale.total_points
            assert refunded == sum(ret.refund_points for ret in sale.returns)
            back = dict(
                session.execute(
                    select(SaleReturnLine.sale_line_id, func.sum(SaleReturnLine.qty))
                    .join(SaleReturn)
                    .where(SaleReturn.sale_id == sale.id)
                    .group_by(SaleReturnLine.sale_line_id)
                ).all()
            )
            for line in session.scalars(select(SaleLine).where(SaleLine.sale_id == sale.id)):
                assert back.get(line.id, 0) <= line.qty
        today = business_day(utcnow(), local_tz())
        for shop in SHOPS:
            report = daily_report(
                session, actor=self.world["admin_user"], shop_code=shop, day=today, tz=local_tz()
            )
            assert report.matches_ledger, report.differences


def _fresh_world() -> dict[str, Any]:
    """Empty every table and build the same small county: each example starts alike."""
    db.session.rollback()
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            # The audit log refuses deletes by design; it does not take part in the books.
            if table.name != "audit_events":
                conn.execute(table.delete())
    ensure_system_accounts(db.session)
    db.session.commit()
    factory = Factory(db.session)
    village = factory.village("ZJB", name="郑家榜村")
    households = [factory.household(village, balance=100).id for _ in range(3)]
    products = [factory.product(sku, name=sku, points_price=PRICES[sku]) for sku in SKUS]
    world: dict[str, Any] = {
        "households": households,
        "admin": factory.headers(factory.admin),
        "admin_user": factory.admin,
        "clerks": {},
        "managers": {},
    }
    for code in SHOPS:
        shop = factory.shop(code, name=f"{code} 超市")
        factory.receive(shop, *[(product, 10) for product in products])
        world["clerks"][code] = factory.headers(factory.user("clerk", shop=code))
        world["managers"][code] = factory.headers(factory.user("manager", shop=code))
    db.session.commit()
    return world


def test_no_sequence_of_operations_breaks_the_books(app: Flask) -> None:
    Books.app = app
    STEP_COUNT.clear()
    run_state_machine_as_test(
        Books,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # The figure for the closing note: how many steps really ran (make fuzz prints it).
    print(f"\ninvariant steps run: {sum(STEP_COUNT.values())} {dict(STEP_COUNT)}")
    assert sum(STEP_COUNT.values()) > EXAMPLES

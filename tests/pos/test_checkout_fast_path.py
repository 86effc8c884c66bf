"""The checkout's prebuilt statements: what they write, the refusals, the lock order, the cost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import current_app
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from accounts.auth import Role, User
from core.db import db, utcnow
from inventory import services as inventory
from inventory.models import StockLevel, StockOperation
from ledger.models import Transfer
from member_cards.signing import keyring_from_config
from pos import services as pos
from pos.models import Sale, SaleLine
from tests.conftest import assert_problem
from tests.factories import ensure_shop_account
from tests.pos.conftest import balance, on_hand, sale_body

URL = "/api/v1/shops/GJY/sales"


def _sell(
    session: Session,
    actor: User,
    household_id: int,
    lines: list[tuple[str, int]],
    key: str,
    keyring: Any = None,
) -> Any:
    return pos.record_sale(
        session,
        actor=actor,
        now=utcnow(),
        tz=ZoneInfo("Asia/Shanghai"),
        keyring=keyring or keyring_from_config(current_app.config),
        shop_code="GJY",
        lines=[pos.LineRequest(qty=qty, sku=sku) for sku, qty in lines],
        idempotency_key=key,
        household_id=household_id,
    )


@contextmanager
def _statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_the_rows_written_agree_with_the_answer(client, counter):
    response = client.post(
        URL,
        json=sale_body(counter, {"sku": "SOAP", "qty": 2}, {"sku": "RICE-10", "qty": 1}),
        headers=counter.clerk_headers,
    )
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    db.session.rollback()
    sale = db.session.get(Sale, data["sale_id"])
    assert (sale.receipt_no, sale.total_points, sale.balance_after) == (
        data["receipt_no"],
        80,
        220,
    )
    assert sale.clerk_id == counter.clerk.id and sale.status == "completed"
    assert [(ln.position, ln.sku, ln.qty, ln.points_each, ln.points) for ln in sale.lines] == [
        (0, "SOAP", 2, 5, 10),
        (1, "RICE-10", 1, 70, 70),
    ]
    assert data["lines"] == [
        {"sku": line.sku, "name": line.name, "qty": line.qty}
        | {"points_each": line.points_each, "points": line.points}
        for line in sale.lines
    ]
    transfer = db.session.scalar(select(Transfer).where(Transfer.sale_id == sale.id))
    assert (transfer.amount, transfer.reason, transfer.balance_after) == (80, sale.receipt_no, 220)
    operation = db.session.scalar(
        select(StockOperation).where(StockOperation.idempotency_key == "sale:k-1")
    )
    assert operation.reference == sale.receipt_no
    moves = sorted((m.product.sku, m.quantity, m.on_hand_after) for m in operation.movements)
    assert moves == [("RICE-10", -1, 19), ("SOAP", -2, 98)]
    assert {m.reference for m in operation.movements} == {sale.receipt_no}
    assert inventory.reconcile_stock(db.session, actor=counter.manager, shop_code="GJY").ok


def test_every_short_line_is_named_and_nothing_moves(client, counter, factory):
    # Rich enough: the refusal is the stock's, not the points'.
    rich = factory.household(counter.household.village, balance=10_000)
    body = sale_body(
        counter,
        {"sku": "OIL-5L", "qty": 11},
        {"sku": "SOAP", "qty": 1},
        {"sku": "RICE-10", "qty": 21},
    )
    body["household_id"] = rich.id
    problem = assert_problem(client.post(URL, json=body, headers=counter.clerk_headers), 409)
    assert problem["code"] == "out_of_stock"
    assert sorted(
        (line["sku"], line["requested"], line["on_hand"]) for line in problem["lines"]
    ) == [
        ("OIL-5L", 11, 10),
        ("RICE-10", 21, 20),
    ]
    assert (on_hand(counter.shop, counter.soap), balance(rich)) == (100, 10_000)
    assert db.session.scalar(select(Sale.id)) is None
    db.session.rollback()


def test_a_shop_that_may_go_negative_sells_goods_it_has_no_row_for(client, counter, factory):
    admin = factory.headers(factory.admin)
    assert (
        client.patch(
            "/api/v1/shops/GJY", json={"allow_negative_stock": True}, headers=admin
        ).status_code
        == 200
    )
    candle = factory.product("CANDLE", name="蜡烛", points_price=2)
    rich = factory.household(counter.household.village, balance=10_000)
    db.session.commit()
    body = sale_body(counter, {"sku": "CANDLE", "qty": 3}, {"sku": "SOAP", "qty": 101})
    response = client.post(
        URL, json=body | {"household_id": rich.id}, headers=counter.clerk_headers
    )
    assert response.status_code == 201, response.get_json()
    assert (on_hand(counter.shop, candle), on_hand(counter.shop, counter.soap)) == (-3, -1)
    manager = db.session.get(User, counter.manager.id)
    assert inventory.reconcile_stock(db.session, actor=manager, shop_code="GJY").ok
    db.session.rollback()


def test_a_stock_key_used_outside_the_counter_is_refused_not_skipped(client, counter):
    inventory.record_stock_sale(
        db.session,
        actor=counter.clerk,
        now=utcnow(),
        shop_code="GJY",
        lines=[(counter.soap.id, 1)],
        reference="by hand",
        idempotency_key="k-1",
    )
    db.session.commit()
    response = client.post(
        URL, json=sale_body(counter, {"sku": "SOAP", "qty": 1}), headers=counter.clerk_headers
    )
    assert_problem(response, 409, "idempotency_conflict")
    assert (on_hand(counter.shop, counter.soap), balance(counter.household)) == (99, 300)


def test_a_checkout_stays_within_its_statement_budget(app, counter, backend):
    ensure_shop_account(db.session, "GJY")
    lines = [("SOAP", 1), ("RICE-10", 1), ("OIL-5L", 1)]
    household_id = counter.household.id
    _sell(db.session, counter.clerk, household_id, [("SOAP", 1)], "warm")
    db.session.commit()
    clerk = db.session.get(User, counter.clerk.id)
    assert clerk is not None and clerk.role  # loaded: the token look-up is not counted here
    with _statements() as seen:
        result = _sell(db.session, clerk, household_id, lines, "counted")
        view = result.view
    db.session.commit()
    assert view.total_points == 195
    # PostgreSQL: shop and replay, lock, products, receipt number, sale with lines,
    # redemption, stock with movements. SQLite adds a statement per stock line and the
    # separate inserts its lack of data-modifying CTEs needs.
    budget = 7 if backend == "postgresql" else 10 + len(lines)
    assert len(seen) <= budget, seen


def test_sales_and_stock_adjustments_crossing_never_deadlock(
    app, counter, factory, thread_engine, backend
):
    """A sale locks its stock rows in product order, as every stock operation does.

    (Two sales at one shop already queue on the receipt counter; an adjustment does not.)
    """
    if backend != "postgresql":
        pytest.skip("SQLite's IMMEDIATE transactions never hold row locks")
    ensure_shop_account(db.session, "GJY")
    rich = factory.household(counter.household.village, balance=10_000)
    factory.receive(counter.shop, (counter.rice, 500), (counter.oil, 500), (counter.soap, 500))
    manager = factory.user(Role.MANAGER, shop="GJY")
    rich_id, clerk_id, manager_id = rich.id, counter.clerk.id, manager.id
    keyring = keyring_from_config(current_app.config)
    db.session.rollback()
    step = threading.Barrier(2, timeout=30)
    failures: list[BaseException] = []
    rounds = 15

    def attempt(work: Any) -> None:
        for _try in range(3):
            with Session(thread_engine, expire_on_commit=False) as session:
                try:
                    work(session)
                    session.commit()
                    return
                except (IntegrityError, OperationalError) as exc:
                    session.rollback()
                    if "deadlock" in str(exc):
                        raise

    def seller() -> None:
        for i in range(rounds):
            step.wait()
            attempt(
                lambda session, i=i: _sell(
                    session,
                    session.get(User, clerk_id),
                    rich_id,
                    [("RICE-10", 1), ("OIL-5L", 1), ("SOAP", 1)],
                    f"sale-{i}",
                    keyring,
                )
            )

    def adjuster() -> None:
        for i in range(rounds):
            step.wait()
            attempt(
                lambda session, i=i: inventory.adjust_stock(
                    session,
                    actor=session.get(User, manager_id),
                    now=utcnow(),
                    shop_code="GJY",
                    lines=[(sku, -1, "damaged") for sku in ("SOAP", "OIL-5L", "RICE-10")],
                    idempotency_key=f"adjust-{i}",
                )
            )

    def guard(work: Any) -> None:
        try:
            work()
        except BaseException as exc:  # a thread's failure must reach the assertion
            failures.append(exc)

    threads = [threading.Thread(target=guard, args=(work,)) for work in (seller, adjuster)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    levels = select(StockLevel.on_hand).where(StockLevel.shop_id == counter.shop.id)
    assert sorted(db.session.scalars(levels)) == [
        510 - 2 * rounds,
        520 - 2 * rounds,
        600 - 2 * rounds,
    ]
    assert db.session.query(SaleLine).count() == 3 * rounds
    db.session.rollback()

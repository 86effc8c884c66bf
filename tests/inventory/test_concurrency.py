"""Races on one shop's stock: receipts against sales, crossed transfers, one key twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.auth import Role, User
from core.db import db, transactional, utcnow
from core.errors import OutOfStock
from inventory import services
from inventory.models import StockOperation
from tests.inventory.helpers import on_hand


def race(app, actor_id: int, jobs: list[Callable[[Session, User], Any]]) -> list[Any]:
    """Run each job in its own thread and session, all released at once by a barrier.

    Jobs must not touch the test's own ORM objects: on SQLite even a read begins an
    IMMEDIATE transaction, so the test's session is closed for the race.
    """
    db.session.rollback()
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    engine = db.engine

    def run(index: int, job: Callable[[Session, User], Any]) -> None:
        with app.app_context(), Session(engine, expire_on_commit=False) as session:
            actor = session.get(User, actor_id)
            # Loading the actor began a transaction; end it, or on SQLite this thread
            # would wait at the barrier holding the write lock the others queue for.
            session.commit()
            barrier.wait()
            try:
                job(session, actor)
                session.commit()
                results[index] = "ok"
            except Exception as exc:
                session.rollback()
                results[index] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_receipt_racing_sales_ends_with_the_right_on_hand(app, factory, shop, rice):
    factory.receive(shop, (rice, 5))
    manager = factory.user(Role.MANAGER, shop=shop.code)
    shop_code, rice_id, manager_id = shop.code, rice.id, manager.id

    def sale(i: int) -> Callable[[Session, User], Any]:
        return lambda session, actor: services.record_stock_sale(
            session,
            actor=actor,
            now=utcnow(),
            shop_code=shop_code,
            lines=[(rice_id, 2)],
            reference=f"sale-{i}",
            idempotency_key=f"sale-{i}",
        )

    def receipt(session: Session, actor: User) -> Any:
        return services.receive_stock(
            session,
            actor=actor,
            now=utcnow(),
            shop_code=shop_code,
            lines=[("RICE-10", 10)],
            reference="delivery",
            idempotency_key="delivery",
        )

    results = race(app, manager_id, [receipt] + [sale(i) for i in range(6)])
    assert results[0] == "ok"
    sold = results[1:].count("ok")
    assert all(r == "ok" or isinstance(r, OutOfStock) for r in results), results
    # Two sales fit before the delivery whatever the order; all six fit after it.
    assert 2 <= sold <= 6
    assert on_hand(shop, rice) == 5 + 10 - 2 * sold
    assert services.reconcile_stock(db.session, actor=manager, shop_code=shop_code).ok


def test_crossed_multi_line_transfers_never_deadlock(app, factory, shop, other_shop, rice, oil):
    factory.receive(shop, (rice, 50), (oil, 50))
    factory.receive(other_shop, (rice, 50), (oil, 50))
    admin_id, here, there = factory.admin.id, shop.code, other_shop.code

    # Both shuttles start each round together, so their row locks really cross.
    step = threading.Barrier(2, timeout=30)

    def shuttle(source: str, target: str, order: list[str]) -> Callable[[Session, User], Any]:
        def job(session: Session, actor: User) -> None:
            for i in range(10):
                step.wait()
                services.transfer_stock(
                    session,
                    actor=actor,
                    now=utcnow(),
                    shop_code=source,
                    to_shop=target,
                    lines=[(sku, 1) for sku in order],
                    idempotency_key=f"{source}-{i}",
                )
                session.commit()

        return job

    results = race(
        app,
        admin_id,
        [
            shuttle(here, there, ["RICE-10", "OIL-5L"]),
            shuttle(there, here, ["OIL-5L", "RICE-10"]),
        ],
    )
    assert results == ["ok", "ok"]
    assert [on_hand(s, p) for s in (shop, other_shop) for p in (rice, oil)] == [50, 50, 50, 50]


def test_one_key_sent_four_times_at_once_moves_goods_once(app, factory, shop, rice):
    manager_id, shop_code = factory.user(Role.MANAGER, shop=shop.code).id, shop.code
    db.session.rollback()
    barrier = threading.Barrier(4)
    ids: list[Any] = []

    @transactional()
    def receive() -> int:
        actor = db.session.get(User, manager_id)
        return services.receive_stock(
            db.session,
            actor=actor,
            now=utcnow(),
            shop_code=shop_code,
            lines=[("RICE-10", 7)],
            reference="R",
            idempotency_key="the-one",
        ).id

    def run() -> None:
        with app.app_context():
            barrier.wait()
            try:
                ids.append(receive())
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(ids) == 4 and len(set(ids)) == 1
    assert on_hand(shop, rice) == 7
    assert db.session.scalar(select(func.count(StockOperation.id))) == 1

"""The services the counter calls inside its sale's transaction: sale and return movements."""

from __future__ import annotations

import pytest

from accounts.auth import Role
from core.db import db, utcnow
from core.errors import Forbidden, IdempotencyConflict, OutOfStock, UnknownProduct
from inventory import services
from tests.inventory.helpers import movement_count, on_hand


@pytest.fixture
def clerk(factory, shop):
    return factory.user(Role.CLERK, shop=shop.code)


def sell(clerk, shop, lines, key="sale-1", reference="GJY-000001"):
    operation = services.record_stock_sale(
        db.session,
        actor=clerk,
        now=utcnow(),
        shop_code=shop.code,
        lines=lines,
        reference=reference,
        idempotency_key=key,
    )
    db.session.commit()
    return operation


def test_a_sale_takes_goods_by_sku_or_id_and_replays_by_key(factory, shop, rice, oil, clerk):
    factory.receive(shop, (rice, 10), (oil, 3))
    operation = sell(clerk, shop, [(rice.id, 2), ("OIL-5L", 1)])
    assert sorted((m.kind, m.product.sku, m.quantity) for m in operation.movements) == [
        ("sale", "OIL-5L", -1),
        ("sale", "RICE-10", -2),
    ]
    assert {m.reference for m in operation.movements} == {"GJY-000001"}
    assert (on_hand(shop, rice), on_hand(shop, oil)) == (8, 2)

    journal = movement_count()
    again = sell(clerk, shop, [(rice.id, 2), ("OIL-5L", 1)])
    assert again.id == operation.id
    assert movement_count() == journal
    with pytest.raises(IdempotencyConflict):
        sell(clerk, shop, [(rice.id, 3), ("OIL-5L", 1)])


def test_a_short_sale_names_the_line_and_the_rollback_leaves_everything(
    factory, shop, rice, oil, clerk
):
    factory.receive(shop, (rice, 10), (oil, 1))
    journal = movement_count()
    with pytest.raises(OutOfStock) as refused:
        sell(clerk, shop, [(rice.id, 2), (oil.id, 2)])
    db.session.rollback()
    assert refused.value.extra["lines"] == [
        {"sku": "OIL-5L", "name": "菜籽油 5升", "requested": 2, "on_hand": 1}
    ]
    assert (on_hand(shop, rice), on_hand(shop, oil), movement_count()) == (10, 1, journal)


def test_retired_and_unknown_goods_are_not_sold(factory, shop, rice, clerk):
    factory.receive(shop, (rice, 10))
    with pytest.raises(UnknownProduct):
        sell(clerk, shop, [("NOPE", 1)])
    db.session.rollback()
    services.update_product(
        db.session, actor=factory.admin, now=utcnow(), sku="RICE-10", active=False
    )
    db.session.commit()
    with pytest.raises(UnknownProduct):
        sell(clerk, shop, [(rice.id, 1)])


def test_a_clerk_sells_only_at_their_own_shop(factory, shop, other_shop, rice):
    stranger = factory.user(Role.CLERK, shop=other_shop.code)
    factory.receive(shop, (rice, 10))
    with pytest.raises(Forbidden):
        sell(stranger, shop, [(rice.id, 1)])


def test_returned_goods_go_back_on_the_shelf(factory, shop, rice, clerk):
    factory.receive(shop, (rice, 10))
    sell(clerk, shop, [(rice.id, 3)])
    operation = services.return_stock(
        db.session,
        actor=clerk,
        now=utcnow(),
        shop_code=shop.code,
        lines=[("RICE-10", 2)],
        reference="GJY-000001",
        idempotency_key="return-1",
    )
    db.session.commit()
    assert [(m.kind, m.quantity, m.on_hand_after) for m in operation.movements] == [
        ("return", 2, 9)
    ]
    report = services.reconcile_stock(db.session, actor=clerk, shop_code=shop.code)
    assert report.ok

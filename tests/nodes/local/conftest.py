"""A shop node's store on a temporary directory, filled as the county's feed would fill it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from member_cards.signing import Keyring, encode
from nodes.local.offline import card_digest
from nodes.local.store import Store, open_store
from nodes.local.sync import apply_feed_page

KEYRING = Keyring("1", {"1": b"node-test-key"})
# 2026-12-04 10:00 in the shop (Asia/Shanghai).
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def payload(household_id: int, number: int = 1) -> str:
    return encode(KEYRING, household_id, number)


def feed_page(**changes: Any) -> dict[str, Any]:
    """A whole feed for shop GJY: rice, soap, two households of ZJB and their cards."""
    page: dict[str, Any] = {
        "cursor": "c1",
        "more": False,
        "full": True,
        "now": NOW.isoformat(),
        "shop": {"code": "GJY", "name": "高家堰超市"},
        "offline_allowance_points": 200,
        "offline_max_hours": 72,
        "products": [
            {
                "sku": "RICE-10",
                "barcode": "6901234567892",
                "name": "大米",
                "unit": "袋",
                "points_price": 70,
                "active": True,
                "allow_negative_stock": False,
                "on_hand": 5,
            },
            {
                "sku": "SOAP",
                "barcode": None,
                "name": "肥皂",
                "unit": "块",
                "points_price": 10,
                "active": True,
                "allow_negative_stock": False,
                "on_hand": 500,
            },
        ],
        "households": [
            {
                "id": 7,
                "village_code": "ZJB",
                "village_name": "郑家榜村",
                "head_name": "郑大山",
                "members": [{"name": "郑大山"}, {"name": "李小花"}],
                "active": True,
                "floor": 100,
                "balance": 600,
                "allowance": 200,
            },
            {
                "id": 8,
                "village_code": "ZJB",
                "village_name": "郑家榜村",
                "head_name": "郑小河",
                "members": ["郑小河"],
                "active": True,
                "floor": 100,
                "balance": 150,
                "allowance": 50,
            },
        ],
        "cards": [
            {
                "digest": card_digest(payload(7)),
                "household_id": 7,
                "serial": "000007-01",
                "active": True,
            },
            {
                "digest": card_digest(payload(8)),
                "household_id": 8,
                "serial": "000008-01",
                "active": False,
            },
            {
                "digest": card_digest(payload(8, 2)),
                "household_id": 8,
                "serial": "000008-02",
                "active": True,
            },
        ],
        "users": [
            {"username": "clerk-gjy", "role": "clerk", "shop_code": "GJY", "active": True},
        ],
    }
    page.update(changes)
    return page


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(tmp_path / "node")
    with store.session() as session:
        apply_feed_page(session, feed_page(), now=NOW)
    yield store
    store.close()

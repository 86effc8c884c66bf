"""Benchmark of the shop node's feed: a full sync of 130,000 households, and an idle call.

Builds a throwaway SQLite database (or `--database-url`) holding one shop with a node,
`--households` households (default 130,000) of its villages, each with three members, a
balance and a card, then times the service `nodes.services.read_feed` over every page of
a full sync (`--limit` per page, default 5,000) and an idle incremental call. Rows are
inserted with Core, not through the services: this measures the feed, not the set-up.

    .venv/bin/python bench/node_feed.py
    .venv/bin/python bench/node_feed.py --households 20000

Measured 2026-12-04 on the development container (SQLite, 130,000 households with a card
each, 5,000 a page): a full sync in 26 pages took 9.6 s in the service, 2.6 s of it the
response schema's dump (about 370 ms a page); an idle call took 2.7 ms (median of 20)
and re-sent nothing.
"""

# ruff: noqa: E402

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select

from accounts.auth import Role
from config.app import create_app
from core.db import db, utcnow
from inventory.models import Shop
from ledger.models import Account, Household, HouseholdMember, Village
from member_cards.models import MemberCard
from member_cards.signing import card_serial, keyring_from_config
from nodes import services as nodes


def build(households: int) -> None:
    now = utcnow()
    session = db.session
    session.execute(insert(Shop).values(code="GJY", name="高家堰超市", created_at=now))
    shop_id = session.scalar(select(Shop.id).where(Shop.code == "GJY"))
    villages = []
    for i in range(max(1, households // 1000)):
        session.execute(
            insert(Village).values(
                code=f"V{i:04d}",
                name=f"村{i}",
                redemption_floor=100 if i % 3 == 0 else 0,
                home_shop_id=shop_id,
                created_at=now,
            )
        )
        villages.append(session.scalar(select(Village.id).where(Village.code == f"V{i:04d}")))
    batch = 10_000
    for start in range(1, households + 1, batch):
        ids = range(start, min(households, start + batch - 1) + 1)
        session.execute(
            insert(Household),
            [
                {
                    "id": i,
                    "village_id": villages[i % len(villages)],
                    "head_name": f"户主{i}",
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )
        session.execute(
            insert(HouseholdMember),
            [
                {"household_id": i, "name": f"成员{i}-{k}", "position": k}
                for i in ids
                for k in range(3)
            ],
        )
        session.execute(
            insert(Account),
            [
                {
                    "kind": "household",
                    "code": f"household:{i}",
                    "household_id": i,
                    "balance": (i * 37) % 900,
                    "created_at": now,
                    "head_hash": "0" * 64,
                }
                for i in ids
            ],
        )
        session.execute(
            insert(MemberCard),
            [
                {
                    "household_id": i,
                    "number": 1,
                    "serial": card_serial(i, 1),
                    "status": "active",
                    "issued_at": now,
                }
                for i in ids
            ],
        )
    session.commit()
    node, _token = nodes.register_node(
        session,
        now=now,
        shop_code="GJY",
        username="node-gjy",
        token_ttl=timedelta(hours=1),
    )
    assert node.user.role == Role.SHOP_NODE
    session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=130_000)
    parser.add_argument("--limit", type=int, default=5_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        url = args.database_url or f"sqlite:///{home}/feed.db"
        app = create_app(
            {
                "HOME": home,
                "SECRET_KEY": "bench",
                "CARD_SIGNING_KEY": "bench-card-key",
                "SQLALCHEMY_DATABASE_URI": url,
            }
        )
        with app.app_context():
            db.drop_all()
            db.create_all()
            started = time.perf_counter()
            build(args.households)
            print(f"built {args.households} households in {time.perf_counter() - started:.1f} s")
            from nodes.models import ShopNode

            node = db.session.scalar(select(ShopNode))
            keyring = keyring_from_config(app.config)
            from nodes.schemas import FeedOut

            schema = FeedOut()
            dumping = 0.0
            cursor, pages, count, cards = None, 0, 0, 0
            started = time.perf_counter()
            while True:
                page = nodes.read_feed(
                    db.session,
                    node=node,
                    cursor=cursor,
                    limit=args.limit,
                    now=utcnow(),
                    allowance_cap=200,
                    max_hours=72,
                    keyring=keyring,
                )
                pages += 1
                mark = time.perf_counter()
                schema.dump(page)
                dumping += time.perf_counter() - mark
                count += len(page["households"])
                cards += len(page["cards"])
                cursor = page["cursor"]
                db.session.rollback()
                if not page["more"]:
                    break
            full = time.perf_counter() - started
            print(
                f"full sync: {count} households, {cards} cards in {pages} pages: {full:.2f} s "
                f"({full / pages * 1000:.0f} ms a page), of which {dumping:.2f} s dumping "
                "the answers to JSON-ready form"
            )
            # The node's next call, past the late-commit window: nothing changed.
            timings = []
            for _ in range(20):
                started = time.perf_counter()
                page = nodes.read_feed(
                    db.session,
                    node=node,
                    cursor=cursor,
                    limit=args.limit,
                    now=utcnow(),
                    allowance_cap=200,
                    max_hours=72,
                    keyring=keyring,
                )
                timings.append(time.perf_counter() - started)
                db.session.rollback()
            timings.sort()
            print(
                f"idle call: median {timings[len(timings) // 2] * 1000:.1f} ms, "
                f"{len(page['households'])} households re-sent (late-commit window)"
            )


if __name__ == "__main__":
    main()

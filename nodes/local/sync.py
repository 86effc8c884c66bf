"""Keeping the node in step with the county: the feed pulled in, the outbox drained.

OWNER: helper B. Contract:

- `Syncer(store, *, server_url, token, shop_code, interval=3.0, timeout=...)`
- `.start()` / `.stop()`: a daemon thread that every `interval` seconds drains the outbox
  (POST /api/v1/node/sales, in order) then pulls the feed (GET /api/v1/node/feed) until
  `more` is false, then reports (PUT /api/v1/node/report). Any connection error, timeout
  or 502/503/504 marks the node offline (offline_since kept in the store); the first
  success marks it online.
- `.run_once() -> bool`: one round, synchronously (tests, first start); True if online.
- `.online -> bool`: what the last contact said; the gateway reads it per request.
- `.mark_offline(now)`: the gateway saw a pass-through fail; `.wake()`: run a round now.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import urllib3
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from accounts.auth import User
from core.db import utcnow
from inventory.models import Shop
from nodes import chain
from nodes.local import offline
from nodes.local.models import NodeCard, NodeHousehold, NodeProduct, OutboxSale
from nodes.local.store import Store, get_state, set_state

log = logging.getLogger("integrity_pos.shop_node.sync")

USER_AGENT = "integrity-pos-shop-node/1"
FEED_LIMIT = 5000
# Offline sales per POST /api/v1/node/sales/batch: one round trip and one commit for
# many, so an hour's queue reaches the county in seconds once the line is back.
DRAIN_BATCH = 50
CURSOR = "feed_cursor"
# Pages of one pass at most, so a county that always says `more` cannot hold a round.
MAX_PAGES = 1000
DOWN_STATUSES = {502, 503, 504}


class CountyDown(Exception):
    """No answer, a timeout, or a gateway's 502/503/504: the node sells offline."""


class DrainStopped(Exception):
    """The county refused an offline sale: the drain waits; nothing is skipped."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


class Syncer:
    """One thread that keeps the store in step with the county, and says if it answers."""

    def __init__(
        self,
        store: Store,
        *,
        server_url: str,
        token: str,
        shop_code: str,
        interval: float = 3.0,
        timeout: urllib3.Timeout | float | None = None,
        hook: Callable[[str, int], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.server = server_url.rstrip("/")
        self.token = token
        self.shop_code = shop_code.upper()
        self.interval = interval
        if timeout is None:
            timeout = urllib3.Timeout(connect=2.0, read=10.0)
        self.http = urllib3.PoolManager(
            timeout=timeout, retries=False, headers={"User-Agent": USER_AGENT}
        )
        # Tests crash the syncer at named points: "posted" (the county answered a sale,
        # the node has not yet written it down).
        self.hook = hook or (lambda _event, _seq: None)
        self.clock = clock
        self.online = False
        self._chain_checked = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._round = threading.Lock()

    # --- the thread ----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="node-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the thread must outlive any one bad round
                log.exception("sync round failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    # --- online, offline -------------------------------------------------------------

    def mark_offline(self, now: datetime | None = None) -> None:
        now = now or self.clock()
        self.online = False
        with self.store.session() as session:
            if not get_state(session, offline.OFFLINE_SINCE):
                set_state(session, offline.OFFLINE_SINCE, _iso(now))
        self.wake()

    def _mark_online(self) -> None:
        self.online = True
        with self.store.session() as session:
            if get_state(session, offline.OFFLINE_SINCE):
                set_state(session, offline.OFFLINE_SINCE, None)

    # --- HTTP ------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            response = self.http.request(method, self.server + path, body=data, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise CountyDown(str(exc)) from exc
        if response.status in DOWN_STATUSES:
            raise CountyDown(f"HTTP {response.status}")
        payload = None
        if response.data:
            try:
                payload = json.loads(response.data)
            except ValueError:
                payload = {"detail": response.data[:200].decode("utf-8", "replace")}
        return response.status, payload

    # --- one round ---------------------------------------------------------------------

    def run_once(self) -> bool:
        """Drain, pull the feed, report; True if the county answered."""
        with self._round:
            try:
                self._check_chain()
                self._drain()
                self._pull_feed()
                self._report()
            except CountyDown as exc:
                log.info("county unreachable: %s", exc)
                self.mark_offline()
                return False
            self._mark_online()
            return True

    def _check_chain(self) -> None:
        """A re-installed node (empty outbox) continues its chain where the county has it."""
        if self._chain_checked:
            return
        with self.store.session() as session:
            has_rows = session.scalar(select(OutboxSale.seq).limit(1)) is not None
        if has_rows:
            self._chain_checked = True
            return
        status, body = self._call("GET", "/api/v1/node")
        if status != 200 or not isinstance(body, dict):
            self._record_error("chain", status, body)
            return
        with self.store.session() as session:
            if session.scalar(select(OutboxSale.seq).limit(1)) is None:
                last_seq = int(body.get("last_seq") or 0)
                set_state(session, offline.CHAIN_SEQ, last_seq)
                set_state(session, offline.CHAIN_HEAD, body.get("last_hash") or chain.GENESIS)
                if last_seq:
                    # The old PC may have numbered today's sales already; the county
                    # knows only how many sales it made in all, which today's cannot pass.
                    offline.skip_receipt_numbers(session, self.clock(), last_seq)
            if body.get("offline_allowance_points") is not None:
                set_state(session, offline.ALLOWANCE_CAP, int(body["offline_allowance_points"]))
        self._chain_checked = True

    def _record_error(self, stage: str, status: int, body: Any, seq: int | None = None) -> None:
        detail = body.get("detail") if isinstance(body, dict) else None
        code = body.get("code") if isinstance(body, dict) else None
        log.warning("%s: county answered %s %s: %s", stage, status, code, detail)
        with self.store.session() as session:
            set_state(
                session,
                offline.SYNC_ERROR,
                {
                    "stage": stage,
                    "seq": seq,
                    "status": status,
                    "code": code,
                    "detail": None if detail is None else str(detail),
                    "at": _iso(self.clock()),
                },
            )

    # --- the outbox --------------------------------------------------------------------

    def _body(self, row: OutboxSale) -> dict[str, Any]:
        return {
            "seq": row.seq,
            "prev_hash": row.prev_hash,
            "idempotency_key": row.idempotency_key,
            "receipt_no": row.receipt_no,
            "made_at": chain.canonical_time(row.made_at),
            "household_id": row.household_id,
            "card_digest": row.card_digest,
            "lines": [{"sku": line["sku"], "qty": line["qty"]} for line in row.lines],
            "shop_code": self.shop_code,
        }

    def _next_unsynced(self, after: int) -> list[OutboxSale]:
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(OutboxSale)
                    .where(OutboxSale.synced_at.is_(None), OutboxSale.seq > after)
                    .order_by(OutboxSale.seq)
                    .limit(DRAIN_BATCH)
                )
            )

    def _drain(self) -> None:
        """Every unsynced outbox row, in seq order and in batches, until one is refused."""
        after = 0
        resent: set[int] = set()
        while True:
            rows = self._next_unsynced(after)
            if not rows:
                with self.store.session() as session:
                    if get_state(session, offline.SYNC_ERROR, {}).get("stage") == "drain":
                        set_state(session, offline.SYNC_ERROR, None)
                return
            status, body = self._call(
                "POST", "/api/v1/node/sales/batch", {"sales": [self._body(row) for row in rows]}
            )
            if status != 200 or not isinstance(body, dict):
                self._record_error("drain", status, body, seq=rows[0].seq)
                return
            answers = [a for a in body.get("sales") or [] if isinstance(a, dict)][: len(rows)]
            taken = rows[: len(answers)]
            for row in taken:
                self.hook("posted", row.seq)
            if taken:
                with self.store.session() as session:
                    for row, answer in zip(taken, answers, strict=True):
                        stored = session.get(OutboxSale, row.seq)
                        assert stored is not None
                        stored.county_sale_id = answer.get("sale_id")
                        stored.synced_at = self.clock()
                after = taken[-1].seq
            refused = body.get("refused")
            if not isinstance(refused, dict):
                if len(taken) < len(rows):
                    self._record_error("drain", status, body, seq=rows[len(taken)].seq)
                    return
                continue
            row = rows[len(taken)]
            expected = refused.get("expected_seq")
            if refused.get("status") == 409 and isinstance(expected, int) and row.seq not in resent:
                resent.add(row.seq)
                if expected > row.seq:
                    # The county is past this sale: its answer was lost; the resend replays.
                    after = row.seq - 1
                    continue
                if self._reopen_from(expected, row.seq):
                    after = expected - 1
                    continue
            self._record_error("drain", int(refused.get("status") or 409), refused, seq=row.seq)
            return

    def _reopen_from(self, expected: int, seq: int) -> bool:
        """The county lacks sales the node thought it had: send them again from `expected`."""
        with self.store.session() as session:
            rows = session.scalars(
                select(OutboxSale).where(OutboxSale.seq >= expected, OutboxSale.seq < seq)
            ).all()
            if len(rows) != seq - expected:
                return False
            for stored in rows:
                stored.synced_at = None
        return True

    # --- the feed --------------------------------------------------------------------

    def _pull_feed(self) -> None:
        with self.store.session() as session:
            cursor = get_state(session, CURSOR) or ""
        seen: dict[str, set[Any]] | None = None
        for _page in range(MAX_PAGES):
            query = urllib.parse.urlencode({"cursor": cursor, "limit": FEED_LIMIT})
            status, page = self._call("GET", f"/api/v1/node/feed?{query}")
            if status != 200 or not isinstance(page, dict):
                self._record_error("feed", status, page)
                return
            full = bool(page.get("full"))
            if full and seen is None:
                seen = {"products": set(), "households": set(), "cards": set(), "users": set()}
            more = bool(page.get("more"))
            cursor = str(page.get("cursor") or "")
            with self.store.session() as session:
                apply_feed_page(session, page, now=self.clock(), seen=seen)
                if seen is not None and not more:
                    self._drop_unseen(session, seen)
                # A full pass's cursor is kept only once it is whole: killed halfway, the
                # node starts the pass again rather than never dropping what went away.
                if seen is None or not more:
                    set_state(session, CURSOR, cursor)
                    set_state(session, offline.LAST_SYNC_AT, _iso(self.clock()))
            if not more:
                return

    def _drop_unseen(self, session: Session, seen: dict[str, set[Any]]) -> None:
        """The end of a full pass: what the county no longer lists goes."""
        # Through a temporary table, not NOT IN (130,000 parameters): SQLite as Python
        # ships it on Windows takes at most 32,766 parameters a statement.
        session.execute(text("CREATE TEMP TABLE IF NOT EXISTS node_seen (k PRIMARY KEY)"))
        kept = select(text("k")).select_from(text("node_seen"))
        for model, key, name in (
            (NodeProduct, "sku", "products"),
            (NodeCard, "digest", "cards"),
            (NodeHousehold, "id", "households"),
        ):
            session.execute(text("DELETE FROM node_seen"))
            if seen[name]:
                session.execute(
                    text("INSERT INTO node_seen (k) VALUES (:k)"), [{"k": k} for k in seen[name]]
                )
            table = model.__table__
            session.execute(delete(table).where(table.c[key].not_in(kept)))
        # Users keep their rows (tokens and sign-ins name them); they stop working.
        for user in session.scalars(select(User).where(User.username.not_in(seen["users"]))):
            user.active = False

    # --- the report ------------------------------------------------------------------

    def _report(self) -> None:
        with self.store.session() as session:
            body = {
                "pending_sales": offline.pending_sales(session),
                "offline_since": get_state(session, offline.OFFLINE_SINCE),
                "last_sync_at": get_state(session, offline.LAST_SYNC_AT),
            }
        status, answer = self._call("PUT", "/api/v1/node/report", body)
        if status >= 400:
            self._record_error("report", status, answer)


# --- a feed page into the store ------------------------------------------------------


def apply_feed_page(
    session: Session, page: dict[str, Any], *, now: datetime, seen: Any = None
) -> None:
    """One page of the feed into the store (upserts; `seen` collects a full pass's keys)."""
    county_now = page.get("now")
    if county_now:
        try:
            skew = (datetime.fromisoformat(county_now) - now).total_seconds()
            set_state(session, offline.CLOCK_SKEW, skew)
        except (TypeError, ValueError):
            pass
    for key in (offline.ALLOWANCE_CAP, offline.MAX_HOURS):
        if isinstance(page.get(key), int):
            set_state(session, key, page[key])
    shop = page.get("shop")
    if isinstance(shop, dict) and shop.get("code"):
        _upsert_shop(session, shop)
    waiting = _unsynced_quantities(session) if page.get("products") else {}
    products = [
        {
            "sku": item["sku"],
            "barcode": item.get("barcode"),
            "name": item.get("name") or item["sku"],
            "unit": item.get("unit") or "",
            "points_price": int(item.get("points_price") or 0),
            "active": bool(item.get("active", True)),
            "allow_negative_stock": bool(item.get("allow_negative_stock", False)),
            # Offline sales the county has not yet taken have not left its stock yet.
            "on_hand": int(item.get("on_hand") or 0) - waiting.get(item["sku"], 0),
        }
        for item in page.get("products") or []
    ]
    households = [
        {
            "id": int(item["id"]),
            "village_code": item.get("village_code") or "",
            "village_name": item.get("village_name") or "",
            "head_name": item.get("head_name") or "",
            "members": list(item.get("members") or []),
            "active": bool(item.get("active", True)),
            "floor": int(item.get("floor") or 0),
            "balance": int(item.get("balance") or 0),
            "allowance": int(item.get("allowance") or 0),
            "synced_at": now,
        }
        for item in page.get("households") or []
    ]
    cards = [
        {
            "digest": item["digest"],
            "household_id": int(item["household_id"]),
            "serial": item.get("serial") or "",
            "active": bool(item.get("active", True)),
        }
        for item in page.get("cards") or []
    ]
    # One statement per table and page: a first sync is 130,000 households in pages of
    # 5,000, and a row-by-row get-then-write took 2.5 s a page.
    _upsert(session, NodeProduct, "sku", products)
    _upsert(session, NodeHousehold, "id", households)
    _upsert(session, NodeCard, "digest", cards)
    if seen is not None:
        seen["products"].update(row["sku"] for row in products)
        seen["households"].update(row["id"] for row in households)
        seen["cards"].update(row["digest"] for row in cards)
    for item in page.get("users") or []:
        _upsert_user(session, item)
        if seen is not None:
            seen["users"].add(item["username"])
    session.flush()


def _upsert(session: Session, model: Any, key: str, rows: list[dict[str, Any]]) -> None:
    """Insert the rows, or update those whose `key` the store has: all in one statement."""
    if not rows:
        return
    statement = sqlite_insert(model)
    columns = {name: statement.excluded[name] for name in rows[0] if name != key}
    session.execute(statement.on_conflict_do_update(index_elements=[key], set_=columns), rows)


def _unsynced_quantities(session: Session) -> dict[str, int]:
    waiting: dict[str, int] = {}
    for lines in session.scalars(select(OutboxSale.lines).where(OutboxSale.synced_at.is_(None))):
        for line in lines:
            waiting[line["sku"]] = waiting.get(line["sku"], 0) + int(line["qty"])
    return waiting


def _upsert_shop(session: Session, shop: dict[str, Any]) -> None:
    row = session.scalar(select(Shop).where(Shop.code == shop["code"]))
    if row is None:
        row = Shop(code=shop["code"], name=shop.get("name") or shop["code"])
        session.add(row)
    row.name = shop.get("name") or row.name
    set_state(session, offline.SHOP, {"code": shop["code"], "name": row.name})


def _upsert_user(session: Session, item: dict[str, Any]) -> None:
    user = session.scalar(select(User).where(User.username == item["username"]))
    if user is None:
        # Unusable until the gateway sees the county accept a sign-in and sets it.
        user = User(
            username=item["username"],
            password_hash=generate_password_hash(secrets.token_urlsafe(32)),
        )
        session.add(user)
    user.role = item.get("role") or user.role
    user.shop_code = item.get("shop_code")
    user.active = bool(item.get("active", True))

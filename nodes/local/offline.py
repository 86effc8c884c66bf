"""Selling with the line down: the counter's answers from the node's own store.

OWNER: helper B. Every function takes the Session explicitly, raises core.errors domain
errors (their problem+json is the county's), and never commits. Bodies are the county's
shapes (pos.schemas, member_cards.schemas), so the counter page cannot tell them apart
except by `"offline": true` on a sale.

- `find_customer(session, *, shop_code, card_payload, now) -> dict` (CustomerOut)
- `resolve_card(session, *, card_payload) -> dict` (member_cards ResolveOut)
- `find_goods(session, *, shop_code, code) -> dict` (GoodsOut)
- `sell_offline(session, *, username, shop_code, lines, idempotency_key, card_payload=None,
   household_id=None, now, max_hours) -> dict` (SaleOut with offline true, receipt_no
   SHOP-YYYYMMDD-L####, sale_id = OFFLINE_ID_BASE + seq); a replay of its key answers
   the same body.
- `get_offline_sale(session, sale_id) -> dict` (SaleDetailOut)
- `offline_receipt(session, sale_id, *, fmt, paper, mode) -> (bytes|str, mimetype)`
- `print_state(session, sale_id) -> dict` (the counter's print state body)
- `note_online_sale(session, answer: dict, *, now)`: a sale the county answered while the
   line was up (pass-through): the household's allowance follows its balance_after.
- `node_status(session, *, now, online) -> dict` {online, last_sync_at, offline_since,
   pending_sales, allowance_households}
- `pending_sales(session) -> int`
"""

# Offline sales' ids at the node: far above any county sale id, so the gateway can tell
# a path naming one (/api/v1/sales/<id>/...) and answer it locally even once online.
OFFLINE_ID_BASE = 2_000_000_000

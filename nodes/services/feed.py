"""What a shop node needs to sell offline, as changes since its cursor (GET /api/v1/node/feed).

OWNER: helper A. Contract (the node's syncer, nodes/local/sync.py, relies on it):

GET /api/v1/node/feed?cursor=<opaque>&limit=<1..5000, default 2000>  (role shop_node,
the node's own token) -> 200
{
  "cursor": "<opaque text: pass it back next time>",
  "more": true|false,            # true: call again at once, this page was cut at `limit`
  "full": true|false,            # true: the cursor was empty, unreadable or too old: this
                                 # and the following pages (until more=false) are the whole
                                 # state; the node replaces its tables when `more` goes false
  "now": "<county time, ISO with offset>",   # for the node's clock-skew check
  "shop": {"code", "name"},
  "offline_allowance_points": 200,
  "offline_max_hours": 72,
  "products": [{"sku", "barcode", "name", "unit", "points_price", "active",
                "allow_negative_stock", "on_hand"}],     # on_hand: this shop's stock
  "households": [{"id", "village_code", "village_name", "head_name", "members": [...],
                  "active", "floor", "balance", "allowance"}],
                  # only households of villages whose home shop is the node's shop;
                  # allowance = min(offline_allowance_points, max(0, balance - floor))
  "cards": [{"digest", "household_id", "serial", "active"}],
                  # digest = sha256 hex of the card's payload text (member_cards.signing);
                  # active false: revoked (the node refuses it offline)
  "users": [{"username", "role", "shop_code", "active"}]   # the shop's staff + admins
}
Changes since the cursor: a household appears again when its balance, floor, members,
active flag or village changed; a product when it or this shop's stock of it changed; a
card when it was issued or revoked. Late commits (ids taken before a slower transaction
commits) are caught by re-sending a small window behind the cursor: the node upserts, so
a repeat is harmless.
"""

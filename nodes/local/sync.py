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

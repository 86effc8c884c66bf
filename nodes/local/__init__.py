"""The shop node process: a shop's counter PC that sells through a lost line (API.md).

Never imported by the county app. `integrity-pos shop-node` (cli.py) starts it: a WSGI
gateway (gateway.py) that passes requests to the county while it answers and hands them
to the local app (app.py: the county's own app factory, offline views) when it does not;
a syncer (sync.py) that pulls the county's feed into the local store (store.py, models.py)
and drains the outbox of offline sales; offline selling itself (offline.py); printing
(printer.py).
"""

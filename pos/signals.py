"""What the counter tells the rest of the app: named signals others connect to, never imports.

`sale_recorded` is sent by the edge (pos.api) once a new sale is in the session, before the
commit, so a receiver's rows (a print job) commit or roll back with the sale. A replayed sale
is not sent again. Sender: the Flask app; arguments: `session` and `sale` (the ORM row).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

sale_recorded = _signals.signal("sale-recorded")

"""What the ledger tells the rest of the app: named signals others connect to, never imports.

`verifying` is sent by verify_ledger once the transfers and balances are checked, so that
packages which keep chains of their own next to the ledger (the shop nodes' offline
sales) check them in the same run and add what they find to the report. Sender: the
session; argument: `report` (a ledger.services.VerifyReport).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

verifying = _signals.signal("ledger-verifying")

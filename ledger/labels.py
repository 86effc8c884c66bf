"""People's names for ledger terms, shared by every page that shows a statement."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

KIND_LABELS = {
    "award": _l("Award"),
    "penalty": _l("Penalty"),
    "redemption": _l("Redemption"),
    "refund": _l("Refund"),
    "correction": _l("Correction"),
}

"""Ledger operations. Each takes the session, the acting user and the time; none commits.

Split by topic: villages and households (registry), point rules, posting transfers,
spreadsheet imports, statements, and the self-check (verify). Callers import from here.
"""

from ledger.models import AccountKind
from ledger.services.imports import (
    CHINESE_HEADERS,
    IMPORT_COLUMNS,
    AwardSheet,
    ImportResult,
    award_template_workbook,
    import_awards,
    read_award_sheet,
)
from ledger.services.posting import (
    DEFAULT_OFFLINE_ALLOWANCE,
    ISSUANCE_CODE,
    MAX_TRANSFER_POINTS,
    PENALTY_CODE,
    Posting,
    RedemptionHold,
    SpendMode,
    _system_account,
    ensure_system_accounts,
    hold_for_redemption,
    post_award,
    post_correction,
    post_redemption,
    redeem_points,
    refund_points,
    shop_account_code,
    signed_points,
)
from ledger.services.registry import (
    KEEP,
    create_household,
    create_village,
    get_household,
    get_village,
    list_villages,
    offline_escrow,
    people_count,
    require_active,
    search_households,
    shop_names,
    update_village,
)
from ledger.services.rules import MAX_AWARD_POINTS, create_rule, find_rule, rules_in_force
from ledger.services.statements import StatementEntry, household_statement, system_balance
from ledger.services.verify import VerifyReport, verify_ledger

# AccountKind and _system_account: bench/checkout.py and tests make shop accounts through
# them, as they did when this package was one module.
__all__ = [
    "CHINESE_HEADERS",
    "DEFAULT_OFFLINE_ALLOWANCE",
    "IMPORT_COLUMNS",
    "ISSUANCE_CODE",
    "KEEP",
    "MAX_AWARD_POINTS",
    "MAX_TRANSFER_POINTS",
    "PENALTY_CODE",
    "AccountKind",
    "AwardSheet",
    "ImportResult",
    "Posting",
    "RedemptionHold",
    "SpendMode",
    "StatementEntry",
    "VerifyReport",
    "_system_account",
    "award_template_workbook",
    "create_household",
    "create_rule",
    "create_village",
    "ensure_system_accounts",
    "find_rule",
    "get_household",
    "get_village",
    "hold_for_redemption",
    "household_statement",
    "import_awards",
    "list_villages",
    "offline_escrow",
    "people_count",
    "post_award",
    "post_correction",
    "post_redemption",
    "read_award_sheet",
    "redeem_points",
    "refund_points",
    "require_active",
    "rules_in_force",
    "search_households",
    "shop_account_code",
    "shop_names",
    "signed_points",
    "system_balance",
    "update_village",
    "verify_ledger",
]

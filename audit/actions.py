"""The audit log in words: what each recorded operation was, and its request, field by field.

A row keeps the endpoint, method, path and request as they came (the CSV export too); the
page says them the way the county office speaks: "导入奖惩名单", "规则编号：…".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.templating import PRINTER_KIND_LABELS, ROLE_LABELS

# Every operation that changes something, by endpoint (web requests) or by the name the
# command line records. tests/audit checks each write endpoint of the app has one.
ACTIONS: dict[str, Any] = {
    # signing in, tokens, users
    "auth.login": _l("Sign in"),
    "auth.logout": _l("Sign out"),
    "auth_api.create_token": _l("Get an access token for a program"),
    "cli.create-user": _l("Create a user (on the server)"),
    "cli.create-token": _l("Create an access token (on the server)"),
    "cli.unlock-user": _l("Unlock a user (on the server)"),
    # villages, households, rules, points
    "ledger.villages": _l("Create a village"),
    "ledger_api.create_village": _l("Create a village"),
    "ledger.village_edit": _l("Change a village"),
    "ledger_api.update_village": _l("Change a village"),
    "ledger.households": _l("Register a household"),
    "ledger_api.create_household": _l("Register a household"),
    "ledger.household": _l("Award or penalise a household"),
    "ledger_api.post_award": _l("Award or penalise a household"),
    "ledger_api.post_correction": _l("Correct a household's points"),
    "ledger.rules": _l("Create a point rule"),
    "ledger_api.create_rule": _l("Create a point rule"),
    "ledger.award_import": _l("Import awards and penalties from a file"),
    "ledger_api.import_awards": _l("Import awards and penalties from a file"),
    # rule categories and stars
    "county.categories": _l("Create a rule category"),
    "county_api.create_category": _l("Create a rule category"),
    "county.category_edit": _l("Change a rule category and its star thresholds"),
    "county_api.update_category": _l("Change a rule category"),
    "county_api.set_threshold": _l("Set a star threshold"),
    "county.rule_category": _l("Put a point rule in a category"),
    "county_api.set_rule_category": _l("Put a point rule in a category"),
    # villagers' declarations of deeds
    "declarations.new": _l("Declare a deed"),
    "declarations_api.submit_declaration": _l("Declare a deed"),
    "declarations.card": _l("Find the household of a declaration by card"),
    "declarations.approve": _l("Approve a declaration"),
    "declarations_api.approve_declaration": _l("Approve a declaration"),
    "declarations.reject": _l("Reject a declaration"),
    "declarations_api.reject_declaration": _l("Reject a declaration"),
    "declarations.correct": _l("Take back the points of a declaration"),
    # member cards
    "member_cards.issue": _l("Issue a member card"),
    "cards_api.issue_card": _l("Issue a member card"),
    "member_cards.issue_missing": _l("Issue cards to a village's households without one"),
    "member_cards.reprint": _l("Reprint a member card"),
    "cards_api.reprint_card": _l("Reprint a member card"),
    "member_cards.revoke": _l("Revoke a member card"),
    "cards_api.revoke_card": _l("Revoke a member card"),
    "cards_api.resolve_card": _l("Read a member card"),
    "member_cards.balance": _l("Check a balance by card"),
    # shops, goods, stock
    "inventory_api.create_shop": _l("Open a shop"),
    "inventory_api.update_shop": _l("Change a shop"),
    "inventory_api.create_product": _l("Add goods to the catalogue"),
    "inventory_api.update_product": _l("Change goods in the catalogue"),
    "inventory.receive": _l("Receive a delivery"),
    "inventory_api.receive_stock": _l("Receive a delivery"),
    "inventory.count": _l("Record a stock take"),
    "inventory_api.count_stock": _l("Record a stock take"),
    "inventory.adjust": _l("Record damaged or found goods"),
    "inventory_api.adjust_stock": _l("Record damaged or found goods"),
    "inventory.transfer": _l("Send goods to another shop"),
    "inventory_api.transfer_stock": _l("Send goods to another shop"),
    "inventory.reorder_levels": _l("Set reorder levels"),
    "inventory_api.set_reorder_levels": _l("Set reorder levels"),
    # the counter
    "pos_api.find_customer": _l("Look up a customer at the counter"),
    "pos_api.record_sale": _l("Record a sale"),
    "pos.return_goods": _l("Take back returned goods"),
    "pos_api.record_return": _l("Take back returned goods"),
    "pos.void": _l("Void a sale"),
    "pos_api.void_sale": _l("Void a sale"),
    # printing
    "pos_printers.printer_edit": _l("Set up a shop's receipt printer"),
    "pos_printing_api.put_printer": _l("Set up a shop's receipt printer"),
    "pos_printing_api.reprint": _l("Reprint a receipt"),
    "pos_printing_api.print_report": _l("Print the daily report"),
    "pos_printing_api.retry": _l("Print a failed receipt again"),
    "pos_printing_api.ack": _l("The print agent printed a job"),
    "pos_printing_api.fail": _l("The print agent could not print a job"),
    # shop nodes
    "cli.register-node": _l("Register a shop node (on the server)"),
    "nodes_api.post_offline_sale": _l("A shop node posted a sale it made offline"),
    "nodes_api.post_offline_sales": _l("A shop node posted sales it made offline"),
    "nodes_api.node_report": _l("A shop node reported its state"),
}
OTHER_ACTION = _l("Another operation")

# The fields of requests, as the forms and pages call them.
FIELDS: dict[str, Any] = {
    "action": _l("Button"),
    "active": _l("In use"),
    "address": _l("Address"),
    "allow_negative_stock": _l("May sell below zero stock"),
    "barcode": _l("Barcode"),
    "card_digest": _l("Member card (checked offline)"),
    "baudrate": _l("Baud rate"),
    "bytes": _l("Size (bytes)"),
    "card_payload": _l("Member card"),
    "category": _l("Category"),
    "category_code": _l("Category code"),
    "code": _l("Code"),
    "confirm": _l("Confirmed"),
    "connection": _l("Connection"),
    "content_type": _l("Content"),
    "copies": _l("Copies"),
    "counted": _l("Counted"),
    "date": _l("Date"),
    "delta": _l("Change"),
    "devfile": _l("Device"),
    "enabled": _l("Print receipts"),
    "error": _l("Error"),
    "file": _l("File"),
    "happened_on": _l("Day of the deed"),
    "made_at": _l("Sold at"),
    "photo": _l("Photos"),
    "files": _l("Files"),
    "head_name": _l("Head of household"),
    "host": _l("Host"),
    "household_id": _l("Household number"),
    "idempotency_key": _l("Request key"),
    "in_ep": _l("USB in endpoint"),
    "kind": _l("Connection"),
    "lease": _l("Lease"),
    "lines": _l("Lines"),
    "last_sync_at": _l("Last sync"),
    "offline_since": _l("Offline since"),
    "pending_sales": _l("Sales waiting"),
    "limit_count": _l("Declarations allowed"),
    "limit_period": _l("Period of the declaration limit"),
    "members": _l("Members"),
    "mode": _l("Chinese"),
    "month": _l("Month"),
    "name": _l("Name"),
    "name_en": _l("English name"),
    "next": _l("Back to"),
    "note": _l("Note"),
    "out_ep": _l("USB out endpoint"),
    "paper_mm": _l("Paper width"),
    "password": _l("Password"),
    "payload": _l("Member card"),
    "per": _l("Counted"),
    "persons": _l("Persons"),
    "points": _l("Points"),
    "prev_hash": _l("Previous sale's checksum"),
    "points_price": _l("Price (points)"),
    "port": _l("Port"),
    "position": _l("Order"),
    "printer": _l("Printer"),
    "printer_name": _l("Printer name"),
    "product_id": _l("USB product id"),
    "profile": _l("Printer model"),
    "qty": _l("Quantity"),
    "quarter": _l("Quarter"),
    "reason": _l("Reason"),
    "receipt_no": _l("Receipt number"),
    "sales": _l("Offline sales"),
    "redemption_floor": _l("Redemption floor (points kept in reserve)"),
    "reference": _l("Reference"),
    "reorder_level": _l("Reorder level"),
    "role": _l("Role"),
    "rule_code": _l("Rule code"),
    "seq": _l("Offline sale number"),
    "sha256": _l("Checksum"),
    "shop": _l("Shop"),
    "shop_code": _l("Shop"),
    "sku": _l("SKU"),
    "supplier": _l("Supplier"),
    "timeout": _l("Timeout (seconds)"),
    "title": _l("Title"),
    "to_shop": _l("To shop"),
    "transfer_id": _l("Transfer number"),
    "unit": _l("Unit"),
    "username": _l("Username"),
    "vendor_id": _l("USB vendor id"),
    "via_agent": _l("Printed by the print agent"),
    "village": _l("Village"),
    "village_code": _l("Village"),
    "wait": _l("Wait (seconds)"),
    "year": _l("Year"),
}
# Values that are codes of the app, as people say them.
VALUES: dict[str, dict[str, Any]] = {
    "per": {"household": _l("per household"), "person": _l("per person")},
    "mode": {"text": _l("Chinese text"), "image": _l("Image")},
    "kind": PRINTER_KIND_LABELS,
    "reason": {
        "damaged": _l("Damaged"),
        "expired": _l("Expired"),
        "found": _l("Found"),
        "donated": _l("Donated"),
    },
    "limit_period": {"day": _l("per day"), "week": _l("per week"), "month": _l("per month")},
    "action": {"remove": _l("Remove")},
    "role": {**ROLE_LABELS, "print_agent": _l("Print agent")},
    "content_type": {
        "text/csv": "CSV",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "XLSX",
        "application/json": "JSON",
        "application/octet-stream": _l("a file"),
    },
}
# Values that are typed or scanned codes: shown as code, never translated.
CODE_FIELDS = frozenset(
    {
        "barcode",
        "card_payload",
        "category",
        "category_code",
        "code",
        "devfile",
        "file",
        "files",
        "host",
        "idempotency_key",
        "lease",
        "payload",
        "printer_name",
        "profile",
        "rule_code",
        "sha256",
        "shop",
        "shop_code",
        "sku",
        "to_shop",
        "username",
        "village",
        "village_code",
    }
)
# Form fields a browser sends as checkboxes: "on" or "y" when ticked.
_TICKED = {"on", "y", "yes", "true", "1"}
_BOOLEAN_FIELDS = frozenset({"active", "allow_negative_stock", "confirm", "enabled", "via_agent"})
# Nothing to read in these: the CSRF token is on every form.
_SILENT_FIELDS = frozenset({"csrf_token"})
REDACTED = "***"


@dataclass(frozen=True)
class Detail:
    """One field of a request as the page shows it: its label, its value, and how."""

    label: str
    value: str
    code: bool = False
    known: bool = True


def describe_actor(actor: str, actor_id: int | None) -> tuple[str, str]:
    """Who, in words, and the account name (if any) to show beside it as it is spelled."""
    if actor_id is None and actor == "anonymous":
        return _("Not signed in"), ""
    if actor_id is None and (actor == "cli" or actor.startswith("cli:")):
        return _("Command line on the server"), actor.partition(":")[2]
    return "", actor


def describe_action(action: str) -> str:
    return str(ACTIONS.get(action, OTHER_ACTION))


def matching_actions(text: str) -> list[str]:
    """Endpoints whose description contains `text`, so people can search in their words."""
    text = text.strip()
    if not text:
        return []
    return sorted(name for name, label in ACTIONS.items() if text in str(label))


def describe_detail(detail: str | None) -> list[Detail]:
    """The request a row recorded, field by field; what is not JSON stays as it came."""
    if not detail:
        return []
    try:
        content = json.loads(detail)
    except ValueError:
        return [Detail(label=_("Request"), value=detail, code=True)]
    if not isinstance(content, Mapping):
        return [Detail(label=_("Request"), value=_value_text("", content), code=True)]
    shown = []
    for key in sorted(content, key=str):
        if key in _SILENT_FIELDS:
            continue
        label = FIELDS.get(key)
        shown.append(
            Detail(
                label=str(label) if label is not None else str(key),
                value=_value_text(key, content[key]),
                code=key in CODE_FIELDS,
                known=label is not None,
            )
        )
    return shown


def _value_text(key: str, value: Any) -> str:
    if value == REDACTED:
        return _("(hidden)")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return "、".join(_value_text(key, item) for item in value)
    if isinstance(value, Mapping):
        parts = []
        for inner in sorted(value, key=str):
            if inner in _SILENT_FIELDS:
                continue
            label = FIELDS.get(inner, inner)
            parts.append(f"{label}：{_value_text(inner, value[inner])}")
        return "，".join(parts)
    text = str(value)
    if key == "paper_mm":
        return f"{text} mm"
    if key in _BOOLEAN_FIELDS and text.lower() in _TICKED:
        return _("yes")
    named = VALUES.get(key, {}).get(text)
    return str(named) if named is not None else text

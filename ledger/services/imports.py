"""Awards posted from a cadre's spreadsheet (Excel/WPS workbook or CSV), each row reported by line.

The file format is API.md's: a header row naming the columns in English or Chinese, then
one award or penalty per row, the rule by its code or its exact title. A row without a key
gets one derived from the sheet's content and the row, so the same list uploaded twice
posts nothing twice, whether it comes back as the same bytes, re-saved, or as CSV.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import DomainError, Forbidden, IdempotencyConflict, NotFound, ValidationFailed
from core.scanned import normalize_scanned, parse_scanned_int
from core.spreadsheets import read_rows
from ledger.models import Household, PointRule
from ledger.services.posting import post_award
from ledger.services.registry import get_household
from ledger.services.rules import rules_in_force

IMPORT_COLUMNS = ("household_id", "rule_code", "persons", "reason", "idempotency_key")
REQUIRED_COLUMNS = ("household_id", "rule_code")
# API.md's Chinese headers: part of the file format, the same in every language.
CHINESE_HEADERS = {
    "household_id": "户号",
    "rule_code": "规则",
    "persons": "人数",
    "reason": "事由",
    "idempotency_key": "流水号",
}
# Header cells after _header_word: API.md's names, the Chinese ones, and the obvious
# spellings of the English ones ("Household ID", "rule").
_HEADER_WORDS = {
    "householdid": "household_id",
    "household": "household_id",
    "户号": "household_id",
    "rulecode": "rule_code",
    "rule": "rule_code",
    "规则": "rule_code",
    "persons": "persons",
    "人数": "persons",
    "reason": "reason",
    "事由": "reason",
    "idempotencykey": "idempotency_key",
    "key": "idempotency_key",
    "流水号": "idempotency_key",
}
# A title line ("2026年11月高家堰村积分名单") may stand above the header.
HEADER_SEARCH_ROWS = 10
# The template workbook's example row starts its household cell with this; never posted.
EXAMPLE_MARK = "示例"
_NOTE = re.compile(r"[(（].*?[)）]|[*＊]")
_SPACE = re.compile(r"[\s_\-]+")
KEY_MAX = 100


@dataclass
class ImportResult:
    created: int = 0
    replayed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ImportRow:
    """A data row: its line as the spreadsheet numbers it, its cells by column, its key."""

    line: int
    cells: dict[str, str]
    key: str


@dataclass(frozen=True)
class AwardSheet:
    rows: list[ImportRow]
    # Each column's header as the file writes it, to name it in errors as the cadre does.
    headers: dict[str, str]
    # True when some row's key was derived: changing such a file makes its rows new rows.
    keys_derived: bool

    def label(self, column: str) -> str:
        return self.headers.get(column) or CHINESE_HEADERS.get(column, column)


def _header_word(cell: str) -> str:
    """A header cell as one word: 户号（必填）, Household ID* and household_id alike."""
    return _SPACE.sub("", _NOTE.sub("", normalize_scanned(cell))).lower()


def _header_columns(cells: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        column = _HEADER_WORDS.get(_header_word(cell))
        if column is None:
            continue
        if column in found:
            raise ValidationFailed(
                _l(
                    "The column %(name)s appears twice in the header; keep one.",
                    name=f"{CHINESE_HEADERS[column]} ({column})",
                )
            )
        found[column] = index
    return found


def _missing_columns(columns: list[str]) -> ValidationFailed:
    names = "、".join(f"{CHINESE_HEADERS[c]} ({c})" for c in columns)
    return ValidationFailed(_l("missing columns: %(columns)s", columns=names))


def read_award_sheet(data: bytes, *, max_rows: int) -> AwardSheet:
    """The award rows of a CSV file or an .xlsx workbook's first sheet, keys filled in."""
    rows = read_rows(data)
    header_line, positions, headers = None, {}, {}
    best: dict[str, int] = {}
    found: list[tuple[int, dict[str, str]]] = []
    seen = 0
    for row in rows:
        if header_line is None:
            seen += 1
            columns = _header_columns(row.cells)
            if all(c in columns for c in REQUIRED_COLUMNS):
                header_line, positions = row.line, columns
                headers = {c: row.cells[i] for c, i in columns.items()}
                continue
            if len(columns) > len(best):
                best = columns
            if seen >= HEADER_SEARCH_ROWS:
                break
            continue
        # A row with something only in the cadre's own columns (a name, say) still
        # comes back as an error: its household number was probably forgotten.
        cells = {
            column: (row.cells[index] if index < len(row.cells) else "")
            for column, index in positions.items()
        }
        if normalize_scanned(cells["household_id"]).startswith(EXAMPLE_MARK):
            continue
        if len(found) >= max_rows:
            raise ValidationFailed(_l("at most %(max_rows)s rows per file", max_rows=max_rows))
        found.append((row.line, cells))
    if header_line is None:
        if not seen:
            raise ValidationFailed(_l("the file is empty"))
        raise _missing_columns([c for c in REQUIRED_COLUMNS if c not in best])
    return _with_keys(found, headers)


def _with_keys(found: list[tuple[int, dict[str, str]]], headers: dict[str, str]) -> AwardSheet:
    # The content is the values as read, not the file's bytes: Excel and WPS write a new
    # zip (another timestamp, another order) on every save of an unchanged list, and the
    # same list saved as CSV or with a blank row more is still the same list.
    content = json.dumps(
        [[normalize_scanned(cells.get(c, "")) for c in IMPORT_COLUMNS] for _, cells in found],
        ensure_ascii=False,
    )
    digest = hashlib.sha256(content.encode()).hexdigest()[:32]
    rows, derived = [], False
    for ordinal, (line, cells) in enumerate(found, start=1):
        key = cells.get("idempotency_key", "")
        if not key:
            key, derived = f"sheet-{digest}-{ordinal}", True
        rows.append(ImportRow(line=line, cells=cells, key=key))
    return AwardSheet(rows=rows, headers=headers, keys_derived=derived)


# --- posting ---------------------------------------------------------------------------


class _RowError(DomainError):
    """A row refused, with the sentence that says why (the code is the cause's)."""

    def __init__(self, code: str, detail: Any) -> None:
        super().__init__(detail)
        self.code = code


def _int_cell(sheet: AwardSheet, row: ImportRow, column: str, *, required: bool) -> int | None:
    raw = row.cells.get(column, "")
    if normalize_scanned(raw) == "":
        if required:
            raise _column_error(sheet, column, _l("this cell is empty"))
        return None
    # A cadre's Chinese input method types full-width digits (１３); read as API.md says.
    value = parse_scanned_int(raw, max_digits=9)
    if value is None:
        raise _column_error(sheet, column, _l("not a whole number: %(value)s", value=raw[:20]))
    return value


def _column_error(sheet: AwardSheet, column: str, problem: Any) -> _RowError:
    return _RowError(
        "validation_error",
        _l("%(column)s: %(problem)s", column=sheet.label(column), problem=problem),
    )


class _Rules:
    """The rules in force per village, found by code or by exact title, read once a file."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._by_village: dict[str, list[PointRule]] = {}

    def code_for(self, sheet: AwardSheet, written: str, household: Household) -> str:
        village = household.village
        rules = self._by_village.get(village.code)
        if rules is None:
            rules = self._by_village[village.code] = rules_in_force(self.session, village.code)
        for matches in (
            [r for r in rules if r.code == written],
            [r for r in rules if r.code.lower() == written.lower()],
            [r for r in rules if normalize_scanned(r.title) == written],
        ):
            if len(matches) == 1:
                return matches[0].code
            if matches:
                raise _column_error(
                    sheet,
                    "rule_code",
                    _l(
                        "several rules in force in %(village)s are titled “%(title)s”: write "
                        "the rule's code instead (%(codes)s)",
                        village=village.name,
                        title=written,
                        codes="、".join(r.code for r in matches),
                    ),
                )
        raise _RowError(
            "not_found",
            _l(
                "%(column)s: no rule “%(rule)s” is in force in %(village)s; write a rule's "
                "title or code as the point rules page shows it",
                column=sheet.label("rule_code"),
                rule=written,
                village=village.name,
            ),
        )


def _post_row(
    session: Session,
    sheet: AwardSheet,
    row: ImportRow,
    rules: _Rules,
    *,
    actor: User,
    now: datetime,
) -> bool:
    """Post one row under its own savepoint; True if it had been posted before."""
    household_id = _int_cell(sheet, row, "household_id", required=True)
    persons = _int_cell(sheet, row, "persons", required=False)
    if len(row.key) > KEY_MAX:
        raise _column_error(
            sheet, "idempotency_key", _l("at most %(most)s characters", most=KEY_MAX)
        )
    written_rule = normalize_scanned(row.cells.get("rule_code", ""))
    if not written_rule:
        raise _column_error(sheet, "rule_code", _l("this cell is empty"))
    assert household_id is not None
    household = get_household(session, household_id)
    try:
        actor.require_village(household.village.code)
    except Forbidden as exc:
        raise _RowError(
            exc.code,
            _l(
                "household %(household_id)s is in %(village)s, not a village of yours",
                household_id=household_id,
                village=household.village.name,
            ),
        ) from exc
    rule_code = rules.code_for(sheet, written_rule, household)
    try:
        with session.begin_nested():
            posting = post_award(
                session,
                actor=actor,
                now=now,
                household_id=household_id,
                # The key stays as it was written: a file posted before must replay, not
                # post again under a new spelling.
                idempotency_key=row.key,
                rule_code=rule_code,
                persons=persons,
                reason=row.cells.get("reason") or None,
            )
    except IdempotencyConflict as exc:
        raise _RowError(
            exc.code,
            _l(
                "%(column)s: %(key)s was already used for a different line",
                column=sheet.label("idempotency_key"),
                key=row.key,
            ),
        ) from exc
    return posting.replayed


_FIELD_COLUMNS = {"persons": "persons", "reason": "reason", "rule_code": "rule_code"}


def _row_detail(sheet: AwardSheet, exc: DomainError) -> str:
    """The refusal as a sentence a cadre reads: the column as their file names it, then why."""
    errors = exc.extra.get("errors") if isinstance(exc, ValidationFailed) else None
    if not errors:
        return str(exc.detail)
    parts = []
    for name, messages in errors.items():
        column = _FIELD_COLUMNS.get(name)
        label = sheet.label(column) if column else _l("Points")
        problem = "，".join(str(m) for m in messages)
        parts.append(str(_l("%(column)s: %(problem)s", column=label, problem=problem)))
    return "；".join(parts)


def import_awards(
    session: Session, *, actor: User, now: datetime, sheet: AwardSheet
) -> ImportResult:
    """Post each good row (each under its own savepoint); report the bad ones by line."""
    result = ImportResult()
    rules = _Rules(session)
    for row in sheet.rows:
        try:
            replayed = _post_row(session, sheet, row, rules, actor=actor, now=now)
        except NotFound as exc:
            result.errors.append({"line": row.line, "code": exc.code, "detail": str(exc.detail)})
            continue
        except DomainError as exc:
            detail = _row_detail(sheet, exc)
            result.errors.append({"line": row.line, "code": exc.code, "detail": detail})
            continue
        if replayed:
            result.replayed += 1
        else:
            result.created += 1
    return result


# --- the template workbook -------------------------------------------------------------

TEMPLATE_COLUMNS = ("household_id", "rule_code", "persons", "reason")
_TEMPLATE_WIDTHS = {"household_id": 10, "rule_code": 28, "persons": 8, "reason": 36}
# Rows the rule column offers its list on: a file holds at most IMPORT_MAX_ROWS anyway.
_TEMPLATE_LIST_ROWS = 5_000


def award_template_workbook(session: Session, *, village_code: str | None) -> bytes:
    """An .xlsx to fill in: API.md's Chinese headers, an example row, the rules in force.

    The rule column offers the village's rule titles from a list on a second sheet (the
    first sheet is the one read back); it warns but accepts a code typed instead.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    rules = rules_in_force(session, village_code)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = str(_l("Award list"))
    sheet.append([CHINESE_HEADERS[c] for c in TEMPLATE_COLUMNS])
    example_rule = next((r for r in rules if r.per == "person"), rules[0] if rules else None)
    sheet.append(
        [
            f"{EXAMPLE_MARK}12",
            example_rule.title if example_rule else "",
            2 if example_rule is None or example_rule.per == "person" else None,
            str(_l("cleaned the village road")),
        ]
    )
    bold, grey = Font(bold=True), Font(italic=True, color="808080")
    fill = PatternFill("solid", fgColor="F2DCDB")
    for cell in sheet[1]:
        cell.font, cell.fill = bold, fill
    for cell in sheet[2]:
        cell.font = grey
    for index, column in enumerate(TEMPLATE_COLUMNS):
        letter = chr(ord("A") + index)
        sheet.column_dimensions[letter].width = _TEMPLATE_WIDTHS[column]
    sheet.freeze_panes = "A2"

    listing = workbook.create_sheet(str(_l("Rule list")))
    listing.append([str(_l("Title")), str(_l("Rule code")), str(_l("Points")), str(_l("Counted"))])
    for rule in rules:
        per = _l("per person") if rule.per == "person" else _l("per household")
        listing.append([rule.title, rule.code, rule.points, str(per)])
    for cell in listing[1]:
        cell.font, cell.fill = bold, fill
    for letter, width in zip("ABCD", (36, 18, 8, 10), strict=True):
        listing.column_dimensions[letter].width = width
    if rules:
        validation = DataValidation(
            type="list",
            formula1=f"'{listing.title}'!$A$2:$A${len(rules) + 1}",
            allow_blank=True,
            errorStyle="warning",
            showErrorMessage=True,
            errorTitle=str(_l("Not a rule title")),
            error=str(_l("Choose a rule from the list, or type its code.")),
        )
        sheet.add_data_validation(validation)
        validation.add(f"B2:B{_TEMPLATE_LIST_ROWS + 1}")
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()

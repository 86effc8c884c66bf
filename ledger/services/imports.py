"""Awards posted from a spreadsheet (CSV from Excel or WPS), each row reported by its line."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from accounts.auth import User
from core.errors import DomainError, ValidationFailed
from core.scanned import normalize_scanned, parse_scanned_int
from ledger.services.posting import post_award

IMPORT_COLUMNS = ("household_id", "rule_code", "persons", "reason", "idempotency_key")


@dataclass
class ImportResult:
    created: int = 0
    replayed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def decode_spreadsheet_text(data: bytes) -> str:
    """UTF-8 (with or without Excel's BOM), else GB18030: what WPS and Chinese Excel save."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(_l("the file is neither UTF-8 nor GB18030 text")) from exc


def parse_award_csv(data: bytes, *, max_rows: int) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header is line 1, as a spreadsheet numbers it."""
    text = decode_spreadsheet_text(data)
    if "\x00" in text:
        raise ValidationFailed(_l("the file is not CSV text"))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ValidationFailed(_l("the file is empty")) from None
    except csv.Error as exc:
        raise ValidationFailed(_l("not CSV: %(exc)s", exc=exc)) from exc
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise ValidationFailed(_l("missing columns: %(columns)s", columns=", ".join(missing)))
    rows = []
    # Count records, not physical lines: a cell with a line break (Alt+Enter in Excel) is
    # still one spreadsheet row, and a blank row still has its number.
    line = 1
    try:
        for line, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= max_rows:
                raise ValidationFailed(_l("at most %(max_rows)s rows per file", max_rows=max_rows))
            row = {
                name: (values[i].strip() if i < len(values) else "")
                for i, name in enumerate(header)
            }
            rows.append((line, row))
    except csv.Error as exc:
        raise ValidationFailed(
            _l("line %(line)s: not CSV: %(exc)s", line=line + 1, exc=exc)
        ) from exc
    return rows


def _int_field(row: dict[str, str], name: str, *, required: bool) -> int | None:
    raw = row.get(name, "")
    if normalize_scanned(raw) == "":
        if required:
            raise ValidationFailed(errors={name: [_l("required")]})
        return None
    # A cadre's Chinese input method types full-width digits (１３); read as API.md says.
    value = parse_scanned_int(raw, max_digits=9)
    if value is None:
        raise ValidationFailed(errors={name: [_l("not a whole number: %(value)s", value=raw[:20])]})
    return value


def import_awards(
    session: Session, *, actor: User, now: datetime, rows: list[tuple[int, dict[str, str]]]
) -> ImportResult:
    """Post each good row (each under its own savepoint); report the bad ones by line."""
    result = ImportResult()
    for line, row in rows:
        try:
            household_id = _int_field(row, "household_id", required=True)
            persons = _int_field(row, "persons", required=False)
            key = row.get("idempotency_key", "")
            if not 1 <= len(key) <= 100:
                raise ValidationFailed(errors={"idempotency_key": [_l("1 to 100 characters")]})
            # A code, typed like the ids beside it. The key stays as it was written: a
            # file posted before must replay, not post again under a new spelling.
            rule_code = normalize_scanned(row.get("rule_code", ""))
            if not rule_code:
                raise ValidationFailed(errors={"rule_code": [_l("required")]})
            assert household_id is not None
            with session.begin_nested():
                posting = post_award(
                    session,
                    actor=actor,
                    now=now,
                    household_id=household_id,
                    idempotency_key=key,
                    rule_code=rule_code,
                    persons=persons,
                    reason=row.get("reason") or None,
                )
        except DomainError as exc:
            detail = exc.detail
            if isinstance(exc, ValidationFailed) and exc.extra.get("errors"):
                detail = "; ".join(
                    f"{k}: {', '.join(str(m) for m in v)}" for k, v in exc.extra["errors"].items()
                )
            result.errors.append({"line": line, "code": exc.code, "detail": str(detail)})
            continue
        if posting.replayed:
            result.replayed += 1
        else:
            result.created += 1
    return result

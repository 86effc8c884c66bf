"""Spreadsheets people make in Excel or WPS: reading their rows as text, writing cells safely."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import ValidationFailed

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPES = ("text/csv", "text/plain", "application/csv")

# What Excel and WPS would run as a formula (or DDE) when the file is opened.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")

# A workbook is a zip: these bound what unpacking it may cost, whatever its packed size.
# A list of 5,000 awards unpacks to about 1 MB; a zip bomb declares gigabytes.
XLSX_MAX_UNPACKED_BYTES = 16 * 1024 * 1024
XLSX_MAX_PARTS = 2_000
# Columns read from each row: a sheet's own notes may sit far to the right, ours do not.
MAX_COLUMNS = 64

_ZIP_MAGIC = b"PK\x03\x04"
# Excel 97-2003 (.xls) and WPS's own (.et) are OLE compound files.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OTHER_MAGIC = (b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b")


def formula_safe(value: Any) -> Any:
    """A leading apostrophe keeps a name like `=HYPERLINK(...)` a harmless string."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose every cell goes through formula_safe."""

    def __init__(self, out: Any, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([formula_safe(value) for value in row])


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetRow:
    """One non-blank row: its number as the spreadsheet shows it, and its cells as text."""

    line: int
    cells: tuple[str, ...]


def is_workbook(data: bytes) -> bool:
    """An .xlsx is a zip: decided by the bytes, since a file's name and type may be wrong."""
    return data.startswith(_ZIP_MAGIC)


def cell_text(value: Any) -> str:
    """A cell as the person who typed it reads it, trimmed.

    Excel stores every number as a float, so the 13 typed in a cell arrives as 13.0 and
    is 13 here. A date (Excel turns 2026-11-1 into one) is its ISO date.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without Excel's BOM), else GB18030: what WPS and Chinese Excel save."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(_l("the file is neither UTF-8 nor GB18030 text")) from exc


def _refuse_other_files(data: bytes) -> None:
    if data.startswith(_OLE_MAGIC):
        raise ValidationFailed(
            _l(
                "This is an old Excel (.xls) or WPS (.et) file. Open it in Excel or WPS and "
                "save it as an Excel workbook (.xlsx) or as CSV, then upload that."
            )
        )
    if data.startswith(_OTHER_MAGIC) or b"\x00" in data[:8192]:
        raise ValidationFailed(
            _l("This file is not a spreadsheet. Upload an Excel workbook (.xlsx) or a CSV file.")
        )


def read_rows(data: bytes) -> Iterator[SheetRow]:
    """The non-blank rows of a CSV text or of an .xlsx workbook's first sheet, lazily.

    Rows are numbered as the spreadsheet numbers them (the first is 1), blank ones
    included, so a person finds the line an error names. Stop iterating to stop reading.
    """
    if not data.strip():
        raise ValidationFailed(_l("the file is empty"))
    if is_workbook(data):
        return _workbook_rows(data)
    _refuse_other_files(data)
    return _csv_rows(data)


def _csv_rows(data: bytes) -> Iterator[SheetRow]:
    text = decode_text(data)
    if "\x00" in text:
        raise ValidationFailed(_l("the file is not CSV text"))
    if not text.strip():
        raise ValidationFailed(_l("the file is empty"))
    return _csv_records(text)


def _csv_records(text: str) -> Iterator[SheetRow]:
    reader = csv.reader(io.StringIO(text, newline=""))
    # Count records, not physical lines: a cell with a line break (Alt+Enter in Excel) is
    # still one spreadsheet row, and a blank row still has its number.
    line = 0
    try:
        for line, values in enumerate(reader, start=1):
            cells = tuple(v.strip() for v in values[:MAX_COLUMNS])
            if any(cells):
                yield SheetRow(line, cells)
    except csv.Error as exc:
        raise ValidationFailed(
            _l(
                "Line %(line)s cannot be read as CSV: a cell is far too long or a quote "
                "mark is not closed.",
                line=line + 1,
            )
        ) from exc


def _not_a_workbook() -> ValidationFailed:
    return ValidationFailed(
        _l(
            "This file cannot be read as an Excel workbook (.xlsx): it may be damaged. "
            "Open it in Excel or WPS, save it again as .xlsx or as CSV, and upload that."
        )
    )


def _check_zip(data: bytes) -> None:
    """Refuse a workbook whose unpacking would cost far more than any real list."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
            names = {part.filename for part in parts}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise _not_a_workbook() from exc
    if "xl/workbook.xml" not in names:
        raise ValidationFailed(
            _l(
                "This zip file is not an Excel workbook (a Word document?). "
                "Upload an Excel workbook (.xlsx) or a CSV file."
            )
        )
    # The declared sizes can be trusted: zipfile stops each part there (and checks its CRC).
    if len(parts) > XLSX_MAX_PARTS or sum(p.file_size for p in parts) > XLSX_MAX_UNPACKED_BYTES:
        raise ValidationFailed(
            _l(
                "This workbook is far too large once unpacked. Keep only the list in its "
                "first sheet, or save it as CSV."
            )
        )


def _workbook_rows(data: bytes) -> Iterator[SheetRow]:
    # Imported here: openpyxl takes a while to import and most requests never need it.
    from openpyxl import load_workbook

    _check_zip(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    # A damaged workbook fails wherever openpyxl meets the damage (zip, XML, a missing
    # part, a bad number), with whatever exception that code raises.
    except Exception as exc:
        raise _not_a_workbook() from exc
    return _sheet_rows(workbook)


def _sheet_rows(workbook: Any) -> Iterator[SheetRow]:
    try:
        if not workbook.worksheets:
            raise ValidationFailed(_l("the file is empty"))
        sheet = workbook.worksheets[0]
        # The sheet's declared size may be all of Excel's grid; read what is there.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)
        line = 0
        while True:
            # Damage deep in the sheet shows only when the parser reaches it.
            try:
                values = next(rows, None)
            except Exception as exc:
                raise _not_a_workbook() from exc
            if values is None:
                return
            line += 1
            # Blank rows may run to Excel's last row; skip them at C speed.
            if values.count(None) == len(values):
                continue
            cells = tuple(cell_text(v) for v in values)
            if any(cells):
                yield SheetRow(line, cells)
    finally:
        workbook.close()

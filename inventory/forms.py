"""Forms of the stock pages: they parse and bound what was typed or scanned; services judge it."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from core.errors import ValidationFailed
from core.scanned import normalize_scanned, parse_scanned_int
from inventory.services import MAX_LINES

REQUIRED = _l("Please fill this in.")


class OperationForm(FlaskForm):
    """CSRF plus the key that makes a resubmitted form harmless."""

    idempotency_key = HiddenField(validators=[DataRequired(), Length(max=100)])


class ReceiveForm(OperationForm):
    reference = StringField(
        _l("Delivery note number"), validators=[DataRequired(message=REQUIRED), Length(max=100)]
    )
    supplier = StringField(_l("Supplier"), validators=[Optional(), Length(max=100)])


class AdjustForm(OperationForm):
    reference = StringField(_l("Reference"), validators=[Optional(), Length(max=100)])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


class CountForm(OperationForm):
    reference = StringField(_l("Name of this stock take"), validators=[Optional(), Length(max=100)])


class TransferForm(OperationForm):
    to_shop = SelectField(_l("To shop"), validators=[DataRequired(message=REQUIRED)])
    reference = StringField(_l("Reference"), validators=[Optional(), Length(max=100)])


class ReorderForm(FlaskForm):
    """CSRF only: the levels come as lines."""


def read_lines(
    formdata: MultiDict[str, str],
    number: str,
    *,
    skip_blank: bool = False,
    text: str | None = None,
) -> list[tuple[Any, ...]]:
    """Parallel `sku`, `number` (and `text`) inputs as (sku, int[, text]) lines.

    With skip_blank a line whose number is empty is left out: a count sheet covers only
    the lines counted. Skus and numbers are read as scanned text is (API.md).
    """
    skus = [normalize_scanned(sku) for sku in formdata.getlist("sku")]
    numbers = formdata.getlist(number)
    texts = formdata.getlist(text) if text else []
    if len(numbers) != len(skus) or (text and len(texts) != len(skus)):
        raise ValidationFailed(_l("The lines of this form arrived incomplete; reload the page."))
    lines: list[tuple[Any, ...]] = []
    problems = []
    for index, (sku, raw) in enumerate(zip(skus, numbers, strict=True), start=1):
        if skip_blank and not normalize_scanned(raw):
            continue
        value = parse_scanned_int(raw)
        if value is None:
            problems.append(
                _l(
                    "line %(line)s (%(sku)s): “%(value)s” is not a whole number",
                    line=index,
                    sku=sku[:32],
                    value=raw[:20],
                )
            )
            continue
        lines.append((sku, value, texts[index - 1]) if text else (sku, value))
    if problems:
        raise ValidationFailed(errors={"lines": problems})
    if len(lines) > MAX_LINES:
        raise ValidationFailed(errors={"lines": [_l("at most %(most)s lines", most=MAX_LINES)]})
    return lines

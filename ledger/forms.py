"""Flask-WTF forms of the ledger pages: they parse and bound input; services judge it."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from core.scanned import normalize_scanned, parse_scanned_int
from ledger.schemas import CODE

REQUIRED = _l("Please fill this in.")
CODE_HINT = _l("1 to 32 letters, digits, - or _, starting with a letter or digit.")
# Far beyond any real value yet far below database integer limits: a typo such as
# 99999999999 becomes a readable error here instead of an overflow in the database.
SANE_NUMBER = 1_000_000
TOO_LARGE = _l("This number is far too large.")
NAME_MAX = 100
MEMBERS_MAX = 30
# Names never contain these, and cadres often type a list with them instead of newlines.
_MEMBER_SEPARATORS = re.compile(r"[\n\r、，,；;]+")


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def storable(form: FlaskForm, field: Any) -> None:
    # PostgreSQL refuses NUL in text; say so on the field instead of failing in the database.
    if isinstance(field.data, str) and "\x00" in field.data:
        raise ValidationError(_l("This text contains a character that cannot be stored."))


class WholeNumberField(IntegerField):
    """An integer field that reads full-width digits and signs, and asks in plain words.

    Chinese input methods type those; core.scanned reads them as everywhere else.
    """

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = str(valuelist[0])
        if normalize_scanned(raw) == "":
            self.data = None
            return
        self.data = parse_scanned_int(raw)
        if self.data is None:
            raise ValueError(_l("Please enter a whole number, such as 5 or -5."))


def sane(minimum: int = -SANE_NUMBER) -> NumberRange:
    return NumberRange(min=minimum, max=SANE_NUMBER, message=TOO_LARGE)


def split_members(text: str | None) -> list[str]:
    return [name.strip() for name in _MEMBER_SEPARATORS.split(text or "") if name.strip()]


class VillageEditForm(FlaskForm):
    name = StringField(
        _l("Village name"),
        filters=[strip],
        validators=[DataRequired(REQUIRED), Length(max=NAME_MAX), storable],
    )
    redemption_floor = WholeNumberField(
        _l("Redemption floor (points kept in reserve)"),
        default=0,
        validators=[
            InputRequired(REQUIRED),
            NumberRange(min=0, max=SANE_NUMBER, message=_l("0 or more, at most 1,000,000.")),
        ],
    )


class VillageHomeShopForm(VillageEditForm):
    """The office's edit form: also the village's home shop (the county office's call)."""

    # Not sent (an older page, a script): the home shop stays; an unknown code is refused by
    # the service, in the field's words.
    shop_code = SelectField(_l("Home shop"), choices=[], validate_choice=False)


class VillageForm(VillageEditForm):
    code = StringField(
        _l("Village code"),
        filters=[strip],
        validators=[DataRequired(REQUIRED), Regexp(CODE.regex, message=CODE_HINT)],
    )


def _members_ok(form: FlaskForm, field: TextAreaField) -> None:
    names = split_members(field.data)
    if len(names) > MEMBERS_MAX:
        raise ValidationError(_l("At most %(most)s members.", most=MEMBERS_MAX))
    if any(len(name) > NAME_MAX for name in names):
        raise ValidationError(_l("Each name may have at most %(most)s characters.", most=NAME_MAX))


class HouseholdForm(FlaskForm):
    village_code = SelectField(
        _l("Village"),
        choices=[],
        validate_choice=False,
        validators=[DataRequired(_l("Please choose a village.")), storable],
    )
    head_name = StringField(
        _l("Head of household"),
        filters=[strip],
        validators=[DataRequired(REQUIRED), Length(max=NAME_MAX), storable],
    )
    members = TextAreaField(
        _l("Members (one name per line, the head may be included)"),
        validators=[_members_ok, storable],
    )
    address = StringField(
        _l("Address"), filters=[strip], validators=[Optional(), Length(max=200), storable]
    )


class AwardForm(FlaskForm):
    # Made when the form is drawn, so a double click or a resubmit posts only once.
    idempotency_key = HiddenField(
        validators=[
            DataRequired(_l("This form has expired; please fill it in again.")),
            Length(max=100),
            storable,
        ]
    )
    rule_code = SelectField(_l("Rule"), choices=[], validate_choice=False, validators=[storable])
    persons = WholeNumberField(_l("Number of persons"), validators=[Optional(), sane()])
    points = WholeNumberField(
        _l("Points (negative for a penalty)"), validators=[Optional(), sane()]
    )
    reason = StringField(
        _l("Reason"), filters=[strip], validators=[Optional(), Length(max=200), storable]
    )


class RuleForm(FlaskForm):
    code = StringField(
        _l("Rule code"),
        filters=[strip],
        validators=[DataRequired(REQUIRED), Regexp(CODE.regex, message=CODE_HINT)],
    )
    title = StringField(
        _l("Title"), filters=[strip], validators=[DataRequired(REQUIRED), Length(max=200), storable]
    )
    points = WholeNumberField(
        _l("Points (negative for a penalty)"), validators=[InputRequired(REQUIRED), sane()]
    )
    per = SelectField(
        _l("Counted"),
        choices=[
            SelectChoice("household", _l("per household")),
            SelectChoice("person", _l("per person")),
        ],
        default="household",
        validate_choice=False,
        validators=[storable],
    )
    village_code = SelectField(
        _l("Applies to"), choices=[], validate_choice=False, validators=[storable]
    )
    # Optional limit on declarations of the deed (the declarations package enforces it).
    limit_count = WholeNumberField(
        _l("Declarations allowed per household"),
        validators=[Optional(), NumberRange(min=1, max=1000, message=_l("1 to 1,000."))],
    )
    limit_period = SelectField(
        _l("In each"),
        choices=[
            SelectChoice("", _l("no limit")),
            SelectChoice("day", _l("day")),
            SelectChoice("week", _l("week")),
            SelectChoice("month", _l("month")),
        ],
        default="",
        validate_choice=False,
        validators=[storable],
    )


class ImportForm(FlaskForm):
    file = FileField(
        _l("Excel workbook (.xlsx) or CSV file"),
        validators=[FileRequired(_l("Choose an Excel or CSV file to upload."))],
    )

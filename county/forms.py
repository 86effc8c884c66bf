"""Flask-WTF forms of the county pages: categories, star thresholds, a rule's category."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from county.services import MAX_THRESHOLD
from ledger.forms import CODE_HINT, REQUIRED, WholeNumberField, storable, strip
from ledger.schemas import CODE

POSITION = NumberRange(min=0, max=1000, message=_l("0 to 1000."))
THRESHOLD = NumberRange(min=1, max=MAX_THRESHOLD, message=_l("1 to 100,000 points, or empty."))


class CategoryForm(FlaskForm):
    code = StringField(
        _l("Category code"),
        filters=[strip],
        validators=[DataRequired(REQUIRED), Regexp(CODE.regex, message=CODE_HINT)],
    )
    name = StringField(
        _l("Name"), filters=[strip], validators=[DataRequired(REQUIRED), Length(max=100), storable]
    )
    position = WholeNumberField(_l("Order"), validators=[Optional(), POSITION])


class CategoryEditForm(FlaskForm):
    name = StringField(
        _l("Name"), filters=[strip], validators=[DataRequired(REQUIRED), Length(max=100), storable]
    )
    position = WholeNumberField(_l("Order"), validators=[Optional(), POSITION])
    active = BooleanField(_l("In use"))
    month = WholeNumberField(_l("Points for the month's star"), validators=[Optional(), THRESHOLD])
    quarter = WholeNumberField(
        _l("Points for the quarter's star"), validators=[Optional(), THRESHOLD]
    )
    year = WholeNumberField(_l("Points for the year's star"), validators=[Optional(), THRESHOLD])


class RuleCategoryForm(FlaskForm):
    category = SelectField(
        _l("Category"), choices=[], validate_choice=False, validators=[storable, Length(max=32)]
    )

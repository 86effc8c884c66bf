"""Flask-WTF forms of the declaration pages: they parse and bound input; services judge it."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from declarations.services.intake import NOTE_MAX
from declarations.services.review import REASON_MAX
from ledger.forms import REQUIRED, WholeNumberField, sane, storable, strip

EXPIRED = _l("This form has expired; please fill it in again.")


class DeclarationForm(FlaskForm):
    # Made when the form is drawn, so a double tap or a resent form records only once.
    idempotency_key = HiddenField(validators=[DataRequired(EXPIRED), Length(max=100), storable])
    rule_code = SelectField(
        _l("Good deed"),
        choices=[],
        validate_choice=False,
        validators=[DataRequired(_l("Please choose the deed.")), storable],
    )
    persons = WholeNumberField(
        _l("How many people of the household took part"), validators=[Optional(), sane(1)]
    )
    happened_on = DateField(
        _l("Day it happened"),
        validators=[InputRequired(_l("Please give the day, such as 2026-11-20."))],
    )
    note = TextAreaField(
        _l("Note (optional)"),
        filters=[strip],
        validators=[Optional(), Length(max=NOTE_MAX), storable],
    )


class CardForm(FlaskForm):
    payload = StringField(
        _l("Member card"),
        filters=[strip],
        validators=[DataRequired(_l("Scan the card first.")), Length(max=500), storable],
    )


class ApproveForm(FlaskForm):
    idempotency_key = HiddenField(validators=[DataRequired(EXPIRED), Length(max=100), storable])


class RejectForm(FlaskForm):
    reason = StringField(
        _l("Reason for rejecting"),
        filters=[strip],
        validators=[
            DataRequired(_l("A rejection needs a reason.")),
            Length(max=REASON_MAX),
            storable,
        ],
    )


class CorrectForm(FlaskForm):
    reason = StringField(
        _l("Why the points are taken back"),
        filters=[strip],
        validators=[DataRequired(REQUIRED), Length(max=REASON_MAX), storable],
    )

"""Forms of the sale page: a return by line and a same-day void, each with its reason and key."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from pos.services import MAX_REASON

REQUIRED = _l("Please fill this in.")


class _KeyedForm(FlaskForm):
    """CSRF plus the key that makes a resubmitted form (a double tap, a reload) harmless."""

    idempotency_key = HiddenField(validators=[DataRequired(), Length(max=100)])
    reason = StringField(
        _l("Reason"), validators=[DataRequired(message=REQUIRED), Length(max=MAX_REASON)]
    )


class ReturnForm(_KeyedForm):
    """Quantities come as parallel `sku` and `qty` inputs, one pair per line of the sale."""


class VoidForm(_KeyedForm):
    pass

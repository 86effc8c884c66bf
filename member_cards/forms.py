"""Flask-WTF forms of the household page's card actions: they parse input; services judge it."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from member_cards.services import MAX_REASON_CHARS


class CardActionForm(FlaskForm):
    """A button on someone else's page: carries only where to go back to."""

    next = HiddenField()


class RevokeForm(CardActionForm):
    reason = StringField(
        _l("Why (lost, stolen, ...)"),
        validators=[
            DataRequired(message=_l("Say why the card is revoked.")),
            Length(max=MAX_REASON_CHARS),
        ],
    )

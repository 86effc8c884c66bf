"""Request and response schemas of the declarations API, and reading its multipart intake."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields, validate
from werkzeug.datastructures import FileStorage, MultiDict

from core.api import BaseSchema, LocalDateTime, idempotency_key_field
from core.errors import ValidationFailed
from core.ids import ID_RANGE
from core.scanned import ScannedString, parse_scanned_int
from declarations.models import Status
from declarations.photos import MAX_BYTES, MAX_PHOTOS, PhotoTooLarge
from declarations.services import Submission
from declarations.services.intake import NOTE_MAX
from declarations.services.review import REASON_MAX
from ledger.schemas import CODE


class TypedInt(fields.Integer):
    """A whole number as a form field carries it: text, read as API.md reads typed numbers."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.make_error("invalid", input=value)
        number = value if isinstance(value, int) else parse_scanned_int(value, max_digits=12)
        if number is None:
            raise self.make_error("invalid", input=value)
        return self._validated(number)


class DeclarationIn(BaseSchema):
    """The text fields of the multipart intake (the photos are the `photo` file parts)."""

    household_id = TypedInt(required=True, validate=ID_RANGE)
    rule_code = ScannedString(required=True, validate=CODE)
    persons = TypedInt(load_default=None, validate=validate.Range(1, 100))
    note = fields.String(load_default=None, validate=validate.Length(max=NOTE_MAX))
    happened_on = fields.Date(required=True)
    idempotency_key = idempotency_key_field()


def read_submission(form: MultiDict[str, str], files: MultiDict[str, FileStorage]) -> Submission:
    """A Submission from a multipart body, or a 422 naming each bad field (413: a big photo)."""
    errors: dict[str, Any] = {}
    repeated = [name for name, values in form.lists() if len(values) > 1]
    for name in repeated:
        errors[name] = [str(_l("give this field once"))]
    try:
        data = DeclarationIn().load({name: form[name] for name in form})
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        errors.update(messages)
        data = {}
    others = sorted(name for name in files if name != "photo")
    for name in others:
        errors[name] = [str(_l("unknown file field; send photos as photo"))]
    parts = files.getlist("photo")
    if not parts:
        errors["photo"] = [str(_l("at least one photo is required"))]
    elif len(parts) > MAX_PHOTOS:
        errors["photo"] = [str(_l("at most %(most)s photos", most=MAX_PHOTOS))]
    if errors:
        raise ValidationFailed(_l("Some fields are missing or not valid; see errors."), errors)
    uploads = read_uploads(parts)
    note = (data["note"] or "").strip() or None
    return Submission(
        household_id=data["household_id"],
        rule_code=data["rule_code"],
        happened_on=data["happened_on"],
        idempotency_key=data["idempotency_key"],
        uploads=uploads,
        persons=data["persons"],
        note=note,
    )


def read_uploads(parts: list[FileStorage]) -> tuple[bytes, ...]:
    """The photos' bytes, refusing one over MAX_BYTES before reading it all (413)."""
    uploads = []
    for number, part in enumerate(parts, 1):
        # One byte more than allowed tells a file that is too big without reading it all.
        content = part.stream.read(MAX_BYTES + 1)
        if len(content) > MAX_BYTES:
            raise PhotoTooLarge(
                _l(
                    "photo %(number)s is larger than %(mb)s MB",
                    number=number,
                    mb=MAX_BYTES // (1024 * 1024),
                )
            )
        uploads.append(content)
    return tuple(uploads)


# What the OpenAPI document says the intake takes: a multipart form, not JSON.
INTAKE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [
                    "household_id",
                    "rule_code",
                    "happened_on",
                    "photo",
                    "idempotency_key",
                ],
                "properties": {
                    "household_id": {"type": "integer", "minimum": 1},
                    "rule_code": {"type": "string", "maxLength": 32},
                    "persons": {"type": "integer", "minimum": 1, "maximum": 100},
                    "note": {"type": "string", "maxLength": NOTE_MAX},
                    "happened_on": {"type": "string", "format": "date"},
                    "photo": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_PHOTOS,
                        "items": {"type": "string", "format": "binary"},
                        "description": "One to three JPEG or PNG photos, each up to 10 MB.",
                    },
                    "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 100},
                },
            },
            "encoding": {"photo": {"contentType": "image/jpeg, image/png"}},
        }
    },
}


class DeclarationCreated(BaseSchema):
    id = fields.Integer()
    status = fields.String()
    duplicate_of = fields.Integer()


class DuplicateOut(BaseSchema):
    declaration_id = fields.Integer()
    position = fields.Integer()
    distance = fields.Integer()


class PhotoOut(BaseSchema):
    position = fields.Integer()
    sha256 = fields.String()
    width = fields.Integer()
    height = fields.Integer()
    taken_at = LocalDateTime(allow_none=True)
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    duplicate_of = fields.Nested(DuplicateOut, allow_none=True)


class DeclarationOut(BaseSchema):
    id = fields.Integer()
    status = fields.String()
    household_id = fields.Integer()
    head_name = fields.String()
    village_code = fields.String()
    rule_code = fields.String()
    rule_title = fields.String()
    points = fields.Integer(allow_none=True)
    persons = fields.Integer(allow_none=True)
    happened_on = fields.Date()
    note = fields.String(allow_none=True)
    submitted_by = fields.String()
    submitted_at = LocalDateTime()
    duplicate_of = fields.Integer(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = LocalDateTime(allow_none=True)
    transfer_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    correction_transfer_id = fields.Integer(allow_none=True)
    photos = fields.List(fields.Nested(PhotoOut))


class DeclarationList(BaseSchema):
    declarations = fields.List(fields.Nested(DeclarationOut))


class DeclarationQuery(BaseSchema):
    status = fields.String(load_default=None, validate=validate.OneOf([str(s) for s in Status]))
    village_code = fields.String(load_default=None, validate=CODE)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    before = fields.Integer(load_default=None, validate=ID_RANGE)


class PhotoQuery(BaseSchema):
    position = fields.Integer(load_default=1, validate=validate.Range(1, MAX_PHOTOS))
    size = fields.String(load_default="full", validate=validate.OneOf(["full", "thumb"]))


class ApproveIn(BaseSchema):
    idempotency_key = idempotency_key_field()


class ApprovedOut(BaseSchema):
    id = fields.Integer()
    status = fields.String()
    transfer_id = fields.Integer()


class RejectIn(BaseSchema):
    reason = fields.String(required=True, validate=validate.Length(max=REASON_MAX))


class RejectedOut(BaseSchema):
    id = fields.Integer()
    status = fields.String()
    reason = fields.String()

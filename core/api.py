"""The OpenAPI-documented JSON API: flask-smorest wired to problem+json and bearer auth."""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from typing import Any

import flask_smorest
import marshmallow as ma
from flask_babel import lazy_gettext as _l
from flask_smorest import Api as SmorestApi
from flask_smorest.utils import prepare_response
from marshmallow import fields, validate
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import UnsupportedMediaType

from core.errors import PROBLEM_JSON, handle_http_exception


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with API.md's stable machine code.

    Problems carry extension members (the shortfall, the lines that could not be
    returned, field errors), so the documented schema admits more than these fields.
    """

    class Meta:
        unknown = ma.INCLUDE

    type = fields.String()
    status = fields.Integer(required=True)
    code = fields.String(required=True)
    title = fields.String(required=True)
    detail = fields.String(required=True)
    instance = fields.String()
    errors = fields.Raw()


class Api(SmorestApi):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: Any) -> Any:
        return handle_http_exception(error)

    def _register_responses(self) -> None:
        # Same as flask-smorest's, but errors are documented as what we send.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Error", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


class JsonParser(FlaskParser):
    """webargs' parser, stricter about bodies that are not JSON.

    webargs ignores a body of another content type (a form post to a PATCH would answer
    200 having changed nothing), and only turns JSONDecodeError into a 400, while
    json.loads raises RecursionError for arrays nested thousands deep and ValueError for
    numbers of thousands of digits.
    """

    def _raw_load_json(self, req: Any) -> Any:
        body = req.get_data(cache=True)
        if not is_json_request(req):
            if body:
                raise UnsupportedMediaType(str(_l("Send the body as application/json.")))
            return missing
        if not body.strip():
            # webargs reads an empty JSON body as "no arguments"; it is not JSON.
            raise json.JSONDecodeError("empty body", doc=" ", pos=0)
        try:
            return super()._raw_load_json(req)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise
        except (RecursionError, ValueError) as exc:
            raise json.JSONDecodeError(str(exc), doc=" ", pos=0) from exc


class Blueprint(flask_smorest.Blueprint):
    """The API blueprint every package uses: flask-smorest's, with the stricter parser."""

    ARGUMENTS_PARSER = JsonParser()


api = Api(
    spec_kwargs={
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    }
)


class StrictInt(fields.Integer):
    """An integer that is a JSON number: no "12", no 12.0, no true."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def idempotency_key_field() -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


def _unstorable_text(data: Any) -> bool:
    """NUL (PostgreSQL refuses it) or a lone surrogate (not UTF-8) anywhere in the input."""
    # A loop, not recursion: the JSON may be nested nearly as deep as the stack allows.
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(value, Mapping):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return False


class BaseSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load
    def _refuse_unstorable_text(self, data: Any, **_: Any) -> Any:
        # JSON may spell "\u0000" or "\ud800"; neither can be stored or sent back, so
        # refuse them here as a validation error instead of failing in the database.
        if _unstorable_text(data):
            raise ma.ValidationError(
                str(_l("text must not contain NUL characters or unpaired surrogates"))
            )
        return data


class LocalDateTime(fields.DateTime):
    """ISO 8601 with the county's offset (+08:00), as API.md promises."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        from core.timeutil import to_local

        return None if value is None else to_local(value).isoformat()

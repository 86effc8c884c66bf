"""The OpenAPI-documented JSON API: flask-smorest wired to problem+json and bearer auth."""

from __future__ import annotations

import http
from typing import Any

import marshmallow as ma
from flask_smorest import Api as SmorestApi
from flask_smorest.utils import prepare_response
from marshmallow import fields, validate

from config.errors import PROBLEM_JSON, handle_http_exception


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with API.md's stable machine code."""

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


class BaseSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE
        ordered = True


class LocalDateTime(fields.DateTime):
    """ISO 8601 with the county's offset (+08:00), as API.md promises."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        from config.timeutil import to_local

        return None if value is None else to_local(value).isoformat()

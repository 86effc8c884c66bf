"""Row ids: 32-bit integers in every table, so one limit and one URL converter for them all."""

from __future__ import annotations

from typing import Any

from flask import Flask
from marshmallow import validate
from werkzeug.routing import IntegerConverter

# The largest id an INTEGER primary key holds on PostgreSQL (and what SQLite is held to
# here): a larger number in a URL or a field is an id that cannot exist, never a database
# overflow error.
MAX_ID = 2**31 - 1
ID_RANGE = validate.Range(1, MAX_ID)


def is_id(value: Any) -> bool:
    """Whether value could be a row's id: an int (not a bool) from 1 to MAX_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


class IdConverter(IntegerConverter):
    """`<id:name>` in a route: a positive 32-bit integer, else the route does not match (404)."""

    def __init__(self, map: Any) -> None:
        super().__init__(map, min=1, max=MAX_ID)


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter

"""Printing fixtures: the counter's shop and household, a fake network printer, the worker."""

from __future__ import annotations

from tests.pos.conftest import counter  # noqa: F401
from tests.printing.fixtures import fake, worker_app  # noqa: F401

"""Browser pages here run on SQLite: the pages are the same on every backend."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # The view tests cover PostgreSQL; a browser adds nothing there.
    return request.param

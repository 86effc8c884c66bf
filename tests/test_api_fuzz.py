"""Schemathesis against /api/v1/openapi.json: every operation, authenticated, never a 500.

Every answer must match its documented schema; every error must be problem+json with one
of API.md's codes. `make test` runs a bounded number of examples per operation;
`make fuzz` raises it through FUZZ_EXAMPLES.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.generation import GenerationMode

from tests.conftest import API_ERROR_CODES
from tests.factories import Factory

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
# `make test` replays the same examples on every run, so CI is repeatable; `make fuzz`
# sets FUZZ_EXAMPLES and explores new ones each time.
DERANDOMIZE = "FUZZ_EXAMPLES" not in os.environ


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    # The fuzzer exercises the HTTP edge; both backends are covered by the other suites.
    return request.param


@pytest.fixture
def api_schema(app: Flask, factory: Factory) -> Any:
    village = factory.village("ZJB", name="郑家榜村")
    household = factory.household(village, balance=500)
    factory.card(household)
    shop = factory.shop("GJY")
    rice = factory.product("RICE-10", name="大米", points_price=70, barcode="6901234567892")
    factory.receive(shop, (rice, 50))
    app.config["FUZZ_HEADERS"] = factory.headers(factory.admin)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def problem_json_with_a_known_code(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} is {content_type}, not problem+json"
    )
    body = response.json()
    code = body.get("code")
    assert code in API_ERROR_CODES, f"{response.status_code} has code {code!r}, not one of API.md's"
    assert body.get("status") == response.status_code
    return None


def test_every_operation_answers_inside_its_contract(api_schema: Any, app: Flask) -> None:
    headers = app.config["FUZZ_HEADERS"]
    failures: list[str] = []
    examples = 0

    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation, mode in itertools.product(operations, GenerationMode):
        # Positive cases follow the schema; negative ones break it on purpose.
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=DERANDOMIZE,
        )
        def run(case: Any) -> None:
            nonlocal examples
            examples += 1
            case.call_and_validate(
                headers=headers,
                checks=[
                    checks.not_a_server_error,
                    checks.response_schema_conformance,
                    checks.content_type_conformance,
                ],
                additional_checks=[problem_json_with_a_known_code],
            )

        try:
            run()
        except Exception as exc:  # collect them all: one run shows every broken operation
            failures.append(f"{operation.verbose_name} ({mode.value}): {str(exc)[:1500]}")
    print(f"\nexamples fuzzed: {examples} over {len(operations)} operations")
    assert not failures, "\n\n".join(failures)


def test_ids_beyond_the_database_integers_are_not_found(app, factory):
    """Found by the fuzzer: a 22-digit id reached SQLite and overflowed (500)."""
    client = app.test_client()
    headers = factory.headers(factory.admin)
    huge = "2033172577123802546176"
    for path in (
        f"/api/v1/households/{huge}",
        f"/api/v1/households/{huge}/statement",
        f"/api/v1/shops/GJY/stock/operations/{huge}",
        f"/api/v1/sales/{huge}",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.get_json()["code"] == "not_found"

"""Property-based fuzzing of the session API from its own OpenAPI schema (schemathesis).

Valid and invalid requests generated from the schema go to a real uvicorn process; every
response must be a documented status with a body that matches its documented schema, and
none may be a 5xx. The example count is bounded so the run stays short.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from parley_server_testkit import TEST_AGENT, ServerProcess
from schemathesis.generation.modes import GenerationMode

EXAMPLES_PER_OPERATION = 50


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[ServerProcess]:
    server = ServerProcess(
        [sys.executable, str(TEST_AGENT), "serve"],
        env={"PARLEY_TEST_DRAIN_TIMEOUT": "0.2"},  # no limit: /ready stays 200
    )
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


OPERATIONS = [
    ("POST", "/calls/{call_id}/sessions"),
    ("GET", "/calls/{call_id}/sessions"),
    ("GET", "/calls/{call_id}/sessions/{session_id}"),
    ("DELETE", "/calls/{call_id}/sessions/{session_id}"),
    ("POST", "/calls/{call_id}/sessions/{session_id}/close"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
]


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: ServerProcess) -> Any:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json")
    # Only this package's routes: plugins (e.g. WebRTC signaling) test their own.
    return schema.include(path_regex=r"^/(calls/|health$|ready$|metrics$)")


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


# Negative (invalid) inputs only where there is input: the routes under /calls/.
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or path.startswith("/calls/")
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_5xx_and_no_schema_violation(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call_and_validate()
        assert response.status_code < 500, response.text

    check()

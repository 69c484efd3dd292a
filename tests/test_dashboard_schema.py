"""Schemathesis drives every operation of the dashboard's OpenAPI schema: no server errors.

The chain is real (anvil, with one task posted), so the generated requests reach the
code that reads it; responses are also checked against the documented schemas.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.test_federation_contract import new_task
from zkfl.dashboard.app import create_app


@pytest.fixture(scope="module")
def dashboard_app(anvil, federation, accounts, verifier_address, initial_model, tmp_path_factory):  # type: ignore[no-untyped-def]
    new_task(federation, accounts, verifier_address, initial_model)
    return create_app(anvil.rpc_url, federation.address,
                      notes_path=Path(tmp_path_factory.mktemp("notes")) / "notes.sqlite")


def test_api_has_no_server_errors(dashboard_app) -> None:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", dashboard_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/api/tasks", "/api/tasks/{task_id}", "/api/auth/verify", "/api/tasks/{task_id}/notes",
        # the portal's
        "/api/portal", "/api/tasks/{task_id}/participants/{wallet}", "/api/tasks/{task_id}/transactions/{action}",
        "/api/tasks/{task_id}/rounds", "/api/tasks/{task_id}/rounds.csv", "/api/tasks/{task_id}/contributions",
        "/ipfs/{cid}"}
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
            calls.append(response.status_code)

        check()
    assert len(calls) >= 5 * len(operations)  # really exercised, not vacuously passing
    assert any(code < 300 for code in calls) and any(400 <= code < 500 for code in calls)


def test_task_status_is_typed_in_the_schema(tmp_path: Path) -> None:
    """The task's record is documented field by field (no chain needed: the schema is static)."""
    schema = create_app("http://127.0.0.1:1", notes_path=tmp_path / "notes.sqlite").openapi()
    ok = schema["paths"]["/api/tasks/{task_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/TaskStatus"}
    components = schema["components"]["schemas"]
    assert {"rounds", "rewards", "slashed", "task_id"} <= components["TaskStatus"]["properties"].keys()
    assert {"accepted", "rejected", "global_commitment"} <= components["RoundStatus"]["properties"].keys()

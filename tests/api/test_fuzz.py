"""Property-based fuzzing of the whole OpenAPI document against the live server (uvicorn).

Zero 5xx responses and zero responses that contradict the schema (status codes,
content types, headers, bodies), with a real token.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import LiveApi


def test_no_server_errors_and_no_schema_violations(live_api: LiveApi) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api.url}/openapi.json")
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            # Random ids rarely exist, so "valid data must be accepted" cannot hold (404).
            case.call_and_validate(
                base_url=live_api.url,
                headers=live_api.headers,
                excluded_checks=[positive_data_acceptance],
                timeout=10,
            )

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures
            failures[operation.label] = str(exc)[:800]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())

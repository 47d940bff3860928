"""Property-based fuzzing of the whole OpenAPI document against the live server (uvicorn).

Zero 5xx responses and zero responses that contradict the schema (status codes,
content types, headers, bodies), with a real token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from templator.config import PROJECT_ROOT, Settings
from templator.localstack.process import free_port
from templator.localstack.seaweedfs import SeaweedFS
from tests.plugins.s3 import ACCESS_KEY, SECRET_KEY


@dataclass
class LiveApi:
    url: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def live_api(settings: Settings, s3_server: SeaweedFS) -> Iterator[LiveApi]:
    """`templator serve` in a subprocess on the test stores, and a token for a fresh user."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_BUCKET": f"fuzz-{port}",
        "CACHE_NAMESPACE": "fuzz",
    }
    templator = str(Path(sys.executable).parent / "templator")
    created = subprocess.run(
        [templator, "user", "create", "--email", f"fuzz-{port}@example.com", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert created.returncode == 0
    token = subprocess.run(
        [templator, "token", "create", "--user", f"fuzz-{port}@example.com", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    server = subprocess.Popen(
        [templator, "serve", "--port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield LiveApi(url, {"Authorization": f"Bearer {json.loads(token)['token']}"})
    finally:
        server.terminate()
        server.wait(15)


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

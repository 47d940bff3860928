"""Over-limit bodies are one 413 problem, with or without Content-Length."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from templator.api.limits import JSON_LIMIT
from templator.connections import Connections
from tests.api.conftest import Caller

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]


async def _chunks(body: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _session(client: httpx.AsyncClient, caller: Caller) -> tuple[str, str]:
    project = (
        await client.post("/api/v1/projects", json={"name": "P"}, headers=caller.headers)
    ).json()["id"]
    session_id = (
        await client.post("/api/v1/sessions", json={"project_id": project}, headers=caller.headers)
    ).json()["id"]
    return project, session_id


def _assert_too_large(response: httpx.Response, limit: int, code: str) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Content Too Large"
    assert problem["code"] == code
    assert f"{limit:,} bytes" in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_json_body_over_the_limit_is_413(
    client: httpx.AsyncClient, make_caller: MakeCaller, chunked: bool
) -> None:
    caller = await make_caller()
    project, _ = await _session(client, caller)
    body = b'{"project_id": "%s", "input_data": {"x": "%s"}}' % (
        project.encode(),
        b"y" * (JSON_LIMIT + 1),
    )
    response = await client.post(
        "/api/v1/sessions",
        content=_chunks(body) if chunked else body,
        headers={**caller.headers, "content-type": "application/json"},
    )
    _assert_too_large(response, JSON_LIMIT, "payload_too_large")
    sessions = await client.get(f"/api/v1/projects/{project}/sessions", headers=caller.headers)
    assert len(sessions.json()["items"]) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_upload_over_the_limit_is_413_reporting_the_configured_limit(
    client: httpx.AsyncClient,
    make_caller: MakeCaller,
    store_connections: Connections,
    chunked: bool,
) -> None:
    caller = await make_caller()
    _, session_id = await _session(client, caller)
    limit = store_connections.settings.upload_max_bytes
    request = client.build_request(
        "POST",
        f"/api/v1/sessions/{session_id}/designs",
        files={"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (limit + 2 * 1024 * 1024))},
        headers=caller.headers,
    )
    body = request.read()
    headers = dict(request.headers)
    if chunked:
        del headers["content-length"]
    response = await client.post(
        request.url, content=_chunks(body) if chunked else body, headers=headers
    )
    _assert_too_large(response, limit, "upload_too_large")
    assert list(store_connections.require_store().iter_objects(f"designs/{session_id}/")) == []


async def test_upload_just_over_the_file_limit_has_the_same_problem(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    caller = await make_caller()
    _, session_id = await _session(client, caller)
    limit = store_connections.settings.upload_max_bytes
    response = await client.post(
        f"/api/v1/sessions/{session_id}/designs",
        files={"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * limit, "image/png")},
        headers=caller.headers,
    )
    assert response.status_code == 413
    problem = response.json()
    assert problem["title"] == "Content Too Large" and problem["code"] == "upload_too_large"
    assert f"{limit:,} bytes" in problem["detail"]

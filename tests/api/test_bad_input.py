"""Bad input gets a problem+json answer naming the field, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from templator.connections import Connections
from tests.api.conftest import Caller

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]


async def _project(client: httpx.AsyncClient, caller: Caller) -> str:
    response = await client.post("/api/v1/projects", json={"name": "P"}, headers=caller.headers)
    project_id: str = response.json()["id"]
    return project_id


async def _count_projects(client: httpx.AsyncClient, caller: Caller) -> int:
    return len((await client.get("/api/v1/projects", headers=caller.headers)).json()["items"])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"name": "unterminated', 400, "body"),
        (b'{"name": 42}', 422, "body.name"),
        (b'{"name": "ok", "owner_id": "me"}', 422, "body.owner_id"),
        (b'{"name": ""}', 422, "body.name"),
        (b'{"name": "a\\u0000b"}', 422, "body"),
    ],
    ids=["malformed-json", "wrong-type", "unknown-field", "too-short", "nul-character"],
)
async def test_bad_bodies_are_problems_naming_the_field(
    client: httpx.AsyncClient, make_caller: MakeCaller, body: bytes, status: int, field: str
) -> None:
    caller = await make_caller()
    response = await client.post(
        "/api/v1/projects",
        content=body,
        headers={**caller.headers, "content-type": "application/json"},
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["field"].startswith(field)
    assert "Traceback" not in response.text and "SELECT" not in response.text
    assert await _count_projects(client, caller) == 0


async def test_oversize_body_is_refused_before_it_is_read(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    caller = await make_caller()
    project = await _project(client, caller)
    huge = (
        b'{"project_id": "'
        + project.encode()
        + b'", "input_data": {"x": "'
        + b"y" * (3 * 1024 * 1024)
        + b'"}}'
    )
    response = await client.post(
        "/api/v1/sessions",
        content=huge,
        headers={**caller.headers, "content-type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    sessions = (
        await client.get(f"/api/v1/projects/{project}/sessions", headers=caller.headers)
    ).json()
    assert sessions["items"] == []


async def test_huge_page_size_is_refused_naming_limit(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    caller = await make_caller()
    response = await client.get(
        "/api/v1/projects", params={"limit": 100000}, headers=caller.headers
    )
    assert response.status_code == 422 and response.json()["field"] == "query.limit"


async def test_invalid_id_in_path_is_422_not_a_database_error(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    caller = await make_caller()
    response = await client.get("/api/v1/templates/not-an-id", headers=caller.headers)
    assert response.status_code == 422 and response.json()["field"] == "path.template_id"


async def test_wrong_upload_type_is_415_and_oversize_upload_413(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    caller = await make_caller()
    project = await _project(client, caller)
    sid = (
        await client.post("/api/v1/sessions", json={"project_id": project}, headers=caller.headers)
    ).json()["id"]
    wrong = await client.post(
        f"/api/v1/sessions/{sid}/designs",
        files={"file": ("x.png", b"<html>no</html>", "image/png")},
        headers=caller.headers,
    )
    assert wrong.status_code == 415 and wrong.json()["field"] == "content_type"
    limit = store_connections.settings.upload_max_bytes
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (limit + 10)
    oversize = await client.post(
        f"/api/v1/sessions/{sid}/designs",
        files={"file": ("x.png", big, "image/png")},
        headers=caller.headers,
    )
    assert oversize.status_code == 413
    assert list(store_connections.require_store().iter_objects(f"designs/{sid}/")) == []


async def test_invalid_hubspot_config_names_the_bad_field(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    caller = await make_caller()
    project = await _project(client, caller)
    config = {
        "meta": {"label": "x", "content_types": ["ANY"]},
        "fields": [
            {"name": "a", "label": "A", "type": "choice", "choices": [["x", "X"]], "default": "y"}
        ],
    }
    response = await client.post(
        "/api/v1/templates",
        json={"project_id": project, "name": "T", "html_content": "<p/>", "hubspot_config": config},
        headers=caller.headers,
    )
    assert response.status_code == 422
    assert "fields > a: default 'y' is not one of the choices" in response.json()["detail"]


async def test_missing_and_revoked_credentials_are_401(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    caller = await make_caller()
    assert (await client.get("/api/v1/projects")).status_code == 401
    assert (
        await client.get(
            "/api/v1/projects", headers={"Authorization": "Bearer tpl_nope_" + "x" * 40}
        )
    ).status_code == 401
    tokens = (await client.get("/api/v1/tokens", headers=caller.headers)).json()
    await client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=caller.headers)
    revoked = await client.get("/api/v1/projects", headers=caller.headers)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


async def test_progress_events_stream_over_sse(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    caller = await make_caller()
    project = await _project(client, caller)
    sid = (
        await client.post("/api/v1/sessions", json={"project_id": project}, headers=caller.headers)
    ).json()["id"]
    await client.post(f"/api/v1/sessions/{sid}/complete", json={}, headers=caller.headers)
    await client.post(f"/api/v1/sessions/{sid}/start", headers=caller.headers)
    await client.post(f"/api/v1/sessions/{sid}/complete", json={}, headers=caller.headers)
    response = await client.get(f"/api/v1/sessions/{sid}/events", headers=caller.headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert (
        response.text.startswith("event: state\ndata: ") and '"status":"COMPLETED"' in response.text
    )

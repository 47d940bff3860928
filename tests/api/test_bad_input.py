"""Bad input gets a problem+json answer naming the field, and nothing is written."""

from __future__ import annotations

import struct
import zlib
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


async def _session(client: httpx.AsyncClient, caller: Caller) -> str:
    """An AI session in a new project of the caller's."""
    project = await _project(client, caller)
    created = await client.post(
        "/api/v1/sessions", json={"project_id": project}, headers=caller.headers
    )
    assert created.status_code == 201, created.text
    sid: str = created.json()["id"]
    return sid


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
    sid = await _session(client, caller)
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
    sid = await _session(client, caller)
    await client.post(f"/api/v1/sessions/{sid}/complete", json={}, headers=caller.headers)
    await client.post(f"/api/v1/sessions/{sid}/start", headers=caller.headers)
    await client.post(f"/api/v1/sessions/{sid}/complete", json={}, headers=caller.headers)
    response = await client.get(f"/api/v1/sessions/{sid}/events", headers=caller.headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert (
        response.text.startswith("event: state\ndata: ") and '"status":"COMPLETED"' in response.text
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b'{"scores": [1, 1e400]}', "body.payload.scores[1]"),
        (b'{"deep": {"x": -1e400}}', "body.payload.deep.x"),
        (b"NaN", "body.payload"),
    ],
    ids=["overflow-in-a-list", "negative-overflow", "nan-literal"],
)
async def test_a_non_finite_number_is_422_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, make_caller: MakeCaller, payload: bytes, field: str
) -> None:
    caller = await make_caller()
    session_id = await _session(client, caller)
    body = b'{"phase": "upload", "progress": 0.1, "payload": ' + payload + b"}"
    answer = await client.post(
        f"/api/v1/sessions/{session_id}/phases",
        content=body,
        headers={**caller.headers, "content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["field"] == field
    assert "finite" in problem["detail"]
    state = await client.get(f"/api/v1/sessions/{session_id}/state", headers=caller.headers)
    assert state.json()["progress"] == 0  # nothing recorded


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _huge_png(width: int, height: int) -> bytes:
    """A PNG that says it is `width` × `height` (8-bit grey) and holds a few rows."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def _bad_crc(png: bytes) -> bytes:
    """`png` with its IDAT chunk's checksum broken."""
    body = bytearray(png)
    at = body.index(b"IDAT")
    (length,) = struct.unpack(">I", body[at - 4 : at])
    body[at + 4 + length] ^= 0xFF
    return bytes(body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_huge_png(30000, 30000), "dimensions are too large"),  # DecompressionBombError
        (_huge_png(12000, 12000), "dimensions are too large"),  # the warning
        (b"\x89PNG\r\n\x1a\n" + b"not a png at all", "not a readable PNG image"),
        (_bad_crc(_huge_png(16, 16)), "not a valid PNG image (broken PNG file"),
    ],
    ids=["bomb-error", "bomb-warning", "unidentified", "bad-checksum"],
)
async def test_an_image_pillow_cannot_decode_is_415_naming_the_problem(
    client: httpx.AsyncClient, make_caller: MakeCaller, body: bytes, problem: str
) -> None:
    caller = await make_caller()
    sid = await _session(client, caller)
    answer = await client.post(
        f"/api/v1/sessions/{sid}/designs",
        files={"file": ("x.png", body, "image/png")},
        headers=caller.headers,
    )
    assert answer.status_code == 415, answer.text
    detail = answer.json()["detail"]
    assert problem in detail
    assert "object at 0x" not in detail and "BytesIO" not in detail

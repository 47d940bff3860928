"""A client-supplied date-time is either storable and readable back, or a 422 naming it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from templator.connections import Connections
from templator.kit.ids import new_id
from tests.api.conftest import Caller

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]


async def _session(client: httpx.AsyncClient, caller: Caller) -> str:
    project = await client.post("/api/v1/projects", json={"name": "P"}, headers=caller.headers)
    created = await client.post(
        "/api/v1/sessions", json={"project_id": project.json()["id"]}, headers=caller.headers
    )
    session_id: str = created.json()["id"]
    return session_id


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+15:00",  # before year 1 in UTC: stored, then unreadable
        "2026-01-01T00:00:00+16:00",  # an offset PostgreSQL refuses
        "9999-12-31T23:00:00-05:00",  # after year 9999 in UTC
        "0001-01-01T00:00:00Z",  # readable in UTC, not in every session time zone
        "1700000000",  # not RFC 3339
    ],
)
async def test_unstorable_log_timestamp_is_422_naming_it(
    client: httpx.AsyncClient, make_caller: MakeCaller, stamp: str
) -> None:
    caller = await make_caller()
    session_id = await _session(client, caller)
    line = {"phase": "upload", "message": "m", "timestamp": stamp}
    response = await client.post(
        f"/api/v1/sessions/{session_id}/logs", json={"lines": [line]}, headers=caller.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "body.lines[0].timestamp"
    logs = await client.get(f"/api/v1/sessions/{session_id}/logs", headers=caller.headers)
    assert logs.status_code == 200 and logs.json()["items"] == []


async def test_extreme_but_valid_timestamps_read_back_in_lists_and_export(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    caller = await make_caller()
    session_id = await _session(client, caller)
    lines = [
        {"phase": "a", "message": "first", "timestamp": "0002-01-01T00:00:00+15:59"},
        {"phase": "a", "message": "last", "timestamp": "9998-12-31T23:59:59.999999-15:59"},
    ]
    appended = await client.post(
        f"/api/v1/sessions/{session_id}/logs", json={"lines": lines}, headers=caller.headers
    )
    assert appended.status_code == 201, appended.text
    logs = await client.get(f"/api/v1/sessions/{session_id}/logs", headers=caller.headers)
    assert logs.status_code == 200
    assert [item["message"] for item in logs.json()["items"]] == ["last", "first"]
    export = await client.get(f"/api/v1/users/{caller.id}/export", headers=caller.headers)
    assert export.status_code == 200


@pytest.mark.parametrize("name", ["since", "until"])
async def test_unstorable_log_filter_is_422_naming_it(
    client: httpx.AsyncClient, make_caller: MakeCaller, name: str
) -> None:
    caller = await make_caller()
    session_id = await _session(client, caller)
    response = await client.get(
        f"/api/v1/sessions/{session_id}/logs",
        params={name: "2026-01-01T00:00:00+16:00"},
        headers=caller.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == f"query.{name}"


@pytest.mark.parametrize(
    "stamp", ["0001-01-01 00:00:00+15:00", "0001-01-01 00:00:00+00", "9999-12-31 12:00:00+00"]
)
async def test_database_refuses_an_unreadable_timestamp_itself(
    connections: Connections, committed: Any, stamp: str
) -> None:
    async with connections.engine.connect() as conn:
        session_id = new_id()
        await conn.execute(
            text("INSERT INTO ai_sessions (id, project_id, user_id) VALUES (:i, :p, :u)"),
            {"i": session_id, "p": committed.project_id, "u": committed.actor.id},
        )
        with pytest.raises(IntegrityError, match="ck_processing_logs_timestamp_readable"):
            await conn.execute(
                text(
                    "INSERT INTO processing_logs (id, session_id, phase, message, timestamp) "
                    "VALUES (:i, :s, 'a', 'm', CAST(:t AS timestamptz))"
                ),
                {"i": new_id(), "s": session_id, "t": stamp},
            )
        await conn.rollback()

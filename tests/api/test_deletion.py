"""Deleting over HTTP leaves no objects behind: a project, a user (GDPR erasure).

When the store fails after an erasure has committed, the erasure stands and its
response says how many objects are left for `templator storage gc`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from templator.connections import Connections
from templator.dev.localstack.process import free_port
from templator.models import StoredObject, UserRole
from templator.storage.service import ObjectStore
from tests.api.conftest import Caller
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
HTML = b"<!DOCTYPE html><html><body><section class='hero'>Hi</section></body></html>"


async def _project_with_objects(client: httpx.AsyncClient, owner: Caller) -> tuple[str, list[str]]:
    """A project with an uploaded design in a session and an exported template module."""
    h = owner.headers
    project = (await client.post("/api/v1/projects", json={"name": "Site"}, headers=h)).json()
    sid = (
        await client.post("/api/v1/sessions", json={"project_id": project["id"]}, headers=h)
    ).json()["id"]
    design = await client.post(
        f"/api/v1/sessions/{sid}/designs",
        files={"file": ("design.html", HTML, "text/html")},
        headers=h,
    )
    assert design.status_code == 201, design.text
    template = await client.post(
        "/api/v1/templates",
        json={
            "project_id": project["id"],
            "name": "Hero",
            "html_content": "<section>{{ module.title }}</section>",
            "hubspot_config": hubspot_config(),
        },
        headers=h,
    )
    assert template.status_code == 201, template.text
    module = await client.post(f"/api/v1/templates/{template.json()['id']}/export", headers=h)
    assert module.status_code == 200, module.text
    return project["id"], [design.json()["key"], module.json()["key"]]


async def _rows(conns: Connections, keys: list[str]) -> int:
    async with conns.sessionmaker() as session:
        statement = select(func.count()).select_from(StoredObject).where(StoredObject.key.in_(keys))
        return (await session.execute(statement)).scalar_one()


def _stored_keys(conns: Connections) -> set[str]:
    return {o["key"] for o in conns.require_store().iter_objects()}


async def test_deleting_a_project_removes_its_objects(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    project_id, keys = await _project_with_objects(client, owner)
    assert _stored_keys(store_connections) == set(keys)

    deleted = await client.delete(f"/api/v1/projects/{project_id}", headers=owner.headers)

    assert deleted.status_code == 204, deleted.text
    assert _stored_keys(store_connections) == set()
    assert await _rows(store_connections, keys) == 0


async def test_erasing_a_user_removes_the_objects_of_all_their_projects(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    user = await make_caller()
    admin = await make_caller(UserRole.ADMIN)
    keys = [key for _ in range(2) for key in (await _project_with_objects(client, user))[1]]
    assert _stored_keys(store_connections) == set(keys)

    erased = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)

    assert erased.status_code == 200, erased.text
    assert erased.json()["removed"]["objects"] == 4
    assert erased.json()["left_for_gc"] == {"objects": 0}
    assert _stored_keys(store_connections) == set()
    assert await _rows(store_connections, keys) == 0


async def test_an_erasure_stands_when_the_store_fails_after_commit_and_says_what_is_left(
    client: httpx.AsyncClient,
    make_caller: MakeCaller,
    store_connections: Connections,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = await make_caller()
    admin = await make_caller(UserRole.ADMIN)
    _, keys = await _project_with_objects(client, user)
    dead = ObjectStore(store_connections.settings, endpoint_url=f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(store_connections, "store", dead)

    with caplog.at_level(logging.ERROR, logger="templator.uow"):
        erased = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)

    assert erased.status_code == 200, erased.text
    assert "post-commit task failed" in caplog.text
    assert erased.json()["removed"] == {
        "projects": 1,
        "ai_sessions": 1,
        "templates": 1,
        "processing_logs": 0,
        "objects": 0,
    }
    assert erased.json()["left_for_gc"] == {"objects": 2}
    assert (await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)).status_code == 404
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    monkeypatch.undo()
    assert await _rows(store_connections, keys) == 0
    assert _stored_keys(store_connections) == set(keys), "left for `templator storage gc`"

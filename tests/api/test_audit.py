"""Sensitive actions leave an audit entry with actor, target and the request's id."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from templator.models import UserRole
from tests.api.conftest import Caller
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]


async def _entries(client: httpx.AsyncClient, admin: Caller, target: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/audit", params={"target_id": target}, headers=admin.headers
    )
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_deleting_a_project_is_audited_with_the_request_id(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner, admin = await make_caller(), await make_caller(UserRole.ADMIN)
    project = (
        await client.post("/api/v1/projects", json={"name": "Gone"}, headers=owner.headers)
    ).json()["id"]
    deleted = await client.delete(
        f"/api/v1/projects/{project}", headers={**owner.headers, "X-Request-ID": "req-audit-1"}
    )
    assert deleted.status_code == 204 and deleted.headers["x-request-id"] == "req-audit-1"
    [entry] = await _entries(client, admin, project)
    assert entry["action"] == "project.delete" and entry["target_type"] == "project"
    assert entry["actor_id"] == owner.id and entry["actor_email"] == owner.email
    assert entry["request_id"] == "req-audit-1"


async def test_module_export_and_template_deletion_are_audited(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner, admin = await make_caller(), await make_caller(UserRole.ADMIN)
    h = owner.headers
    project = (await client.post("/api/v1/projects", json={"name": "P"}, headers=h)).json()["id"]
    body = {"project_id": project, "name": "T", "html_content": "<p/>"}
    template = (
        await client.post(
            "/api/v1/templates", json={**body, "hubspot_config": hubspot_config()}, headers=h
        )
    ).json()["id"]
    assert (await client.post(f"/api/v1/templates/{template}/export", headers=h)).is_success
    assert (await client.delete(f"/api/v1/templates/{template}", headers=h)).status_code == 204
    actions = [e["action"] for e in await _entries(client, admin, template)]
    assert actions == ["template.delete", "template.export"]


async def test_audit_log_is_refused_to_non_admins(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    expert = await make_caller(UserRole.EXPERT)
    response = await client.get("/api/v1/audit", headers=expert.headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"

"""Over HTTP, a read after a delete or a role change never answers from a stale cache entry.

Each test warms the cache with a read first, then changes the data, then reads again.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from templator.models import UserRole
from tests.api.conftest import Caller
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]


async def _session_and_template(client: httpx.AsyncClient, owner: Caller) -> tuple[str, str, str]:
    """A project with a COMPLETED session and a template made from it; both read (cached)."""
    h = owner.headers
    project = (await client.post("/api/v1/projects", json={"name": "Site"}, headers=h)).json()
    sid = (
        await client.post("/api/v1/sessions", json={"project_id": project["id"]}, headers=h)
    ).json()["id"]
    result = {"name": "Hero", "html": "<p/>", "hubspot_config": hubspot_config()}
    phase = {"phase": "generation", "payload": result, "progress": 1}
    assert (await client.post(f"/api/v1/sessions/{sid}/start", headers=h)).is_success
    assert (await client.post(f"/api/v1/sessions/{sid}/phases", json=phase, headers=h)).is_success
    assert (await client.post(f"/api/v1/sessions/{sid}/complete", json={}, headers=h)).is_success
    template = await client.post(
        "/api/v1/templates/from-session", json={"session_id": sid}, headers=h
    )
    assert template.status_code == 201, template.text
    tid = template.json()["id"]
    assert (await client.get(f"/api/v1/templates/{tid}", headers=h)).json()["session_id"] == sid
    assert (await client.get(f"/api/v1/sessions/{sid}/state", headers=h)).status_code == 200
    return project["id"], sid, tid


async def test_after_a_project_delete_its_templates_and_session_states_are_gone(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    project_id, sid, tid = await _session_and_template(client, owner)

    deleted = await client.delete(f"/api/v1/projects/{project_id}", headers=owner.headers)

    assert deleted.status_code == 204, deleted.text
    template = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)
    assert template.status_code == 404, template.text
    state = await client.get(f"/api/v1/sessions/{sid}/state", headers=owner.headers)
    assert state.status_code == 404, state.text


async def test_after_a_session_delete_its_state_is_gone_and_its_template_has_no_session(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    _, sid, tid = await _session_and_template(client, owner)

    deleted = await client.delete(f"/api/v1/sessions/{sid}", headers=owner.headers)

    assert deleted.status_code == 204, deleted.text
    state = await client.get(f"/api/v1/sessions/{sid}/state", headers=owner.headers)
    assert state.status_code == 404, state.text
    template = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)
    assert template.status_code == 200 and template.json()["session_id"] is None


async def test_after_a_template_delete_it_is_gone(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    _, _, tid = await _session_and_template(client, owner)

    deleted = await client.delete(f"/api/v1/templates/{tid}", headers=owner.headers)

    assert deleted.status_code == 204, deleted.text
    template = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)
    assert template.status_code == 404, template.text


async def test_after_erasure_nothing_of_the_user_is_served_and_their_token_fails(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    user = await make_caller()
    admin = await make_caller(UserRole.ADMIN)
    project_id, sid, tid = await _session_and_template(client, user)
    projects = await client.get(
        "/api/v1/projects", params={"user_id": user.id}, headers=admin.headers
    )
    assert [p["id"] for p in projects.json()["items"]] == [project_id]

    erased = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)

    assert erased.status_code == 200, erased.text
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    assert (await client.get(f"/api/v1/templates/{tid}", headers=admin.headers)).status_code == 404
    state = await client.get(f"/api/v1/sessions/{sid}/state", headers=admin.headers)
    assert state.status_code == 404, state.text
    projects = await client.get(
        "/api/v1/projects", params={"user_id": user.id}, headers=admin.headers
    )
    assert projects.json()["items"] == []


async def test_a_role_change_applies_to_the_next_request(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    user = await make_caller()
    admin = await make_caller(UserRole.ADMIN)
    assert (await client.get("/api/v1/users", headers=user.headers)).status_code == 403

    promoted = await client.put(
        f"/api/v1/users/{user.id}/role", json={"role": "ADMIN"}, headers=admin.headers
    )
    assert promoted.status_code == 200, promoted.text
    assert (await client.get("/api/v1/users", headers=user.headers)).status_code == 200

    demoted = await client.put(
        f"/api/v1/users/{user.id}/role", json={"role": "USER"}, headers=admin.headers
    )
    assert demoted.status_code == 200, demoted.text
    assert (await client.get("/api/v1/users", headers=user.headers)).status_code == 403

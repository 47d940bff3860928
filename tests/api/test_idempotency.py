"""Idempotency-Key on the creates: a retry answers the first response, never a second create."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from sqlalchemy import func, select, text, update

from templator.connections import Connections
from templator.idempotency.repository import _LOCK_SEED
from templator.models import IdempotencyKey, Project, StoredObject, Template
from tests.api.conftest import Caller
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
HTML = b"<!DOCTYPE html><html><body><section>Hi</section></body></html>"


def keyed(caller: Caller, key: str) -> dict[str, str]:
    return {**caller.headers, "Idempotency-Key": f'"{key}"'}


async def count(conns: Connections, stmt: Any) -> int:
    async with conns.sessionmaker() as session:
        return int((await session.execute(stmt)).scalar_one())


async def expire_keys(conns: Connections, user_id: str) -> None:
    """Make every key of the user expired."""
    async with conns.sessionmaker() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id)
            .values(expires_at=func.now() - text("interval '1 second'"))
        )
        await session.commit()


async def projects_of(conns: Connections, user_id: str) -> int:
    stmt = select(func.count()).select_from(Project).where(Project.user_id == user_id)
    return await count(conns, stmt)


async def test_a_retried_project_create_answers_the_first_project(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    first = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k1"))
    again = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await projects_of(store_connections, owner.id) == 1


async def test_a_bare_key_is_the_same_key_as_its_quoted_form(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    first = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k2"))
    bare = {**owner.headers, "Idempotency-Key": "k2"}
    again = await client.post("/api/v1/projects", json={"name": "A"}, headers=bare)
    assert again.json()["id"] == first.json()["id"]


async def test_a_key_reused_with_another_body_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k3"))
    other = await client.post("/api/v1/projects", json={"name": "B"}, headers=keyed(owner, "k3"))
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert await projects_of(store_connections, owner.id) == 1


async def test_a_key_reused_on_another_path_is_refused(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    project = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k4"))
    body = {"project_id": project.json()["id"]}
    reused = await client.post("/api/v1/sessions", json=body, headers=keyed(owner, "k4"))
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


async def test_a_key_in_flight_is_409_and_creates_nothing(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    lock = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, :seed))")
    async with store_connections.engine.connect() as holder:
        # The first request's transaction, still open: it holds (user, key).
        await holder.execute(lock, {"name": f"{owner.id}:k5", "seed": _LOCK_SEED})
        busy = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k5"))
        await holder.rollback()
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency_key_in_flight"
    assert await projects_of(store_connections, owner.id) == 0
    done = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k5"))
    assert done.status_code == 201


async def test_keys_are_each_users_own(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    one, two = await make_caller(), await make_caller()
    a = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(one, "k6"))
    b = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(two, "k6"))
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["user_id"] == two.id


async def test_a_failed_create_keeps_no_key(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    missing = {"project_id": "a" * 25}
    refused = await client.post("/api/v1/sessions", json=missing, headers=keyed(owner, "k7"))
    assert refused.status_code == 404
    stmt = (
        select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.user_id == owner.id)
    )
    assert await count(store_connections, stmt) == 0
    project = await client.post("/api/v1/projects", json={"name": "A"}, headers=owner.headers)
    fixed = {"project_id": project.json()["id"]}
    created = await client.post("/api/v1/sessions", json=fixed, headers=keyed(owner, "k7"))
    assert created.status_code == 201


async def test_an_expired_key_creates_again_and_optimize_prunes_it(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    from templator.idempotency.service import IdempotencyService
    from templator.kit.uow import unit_of_work

    owner = await make_caller()
    first = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k8"))
    await expire_keys(store_connections, owner.id)
    again = await client.post("/api/v1/projects", json={"name": "A"}, headers=keyed(owner, "k8"))
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]
    await expire_keys(store_connections, owner.id)
    conns = store_connections
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        assert await IdempotencyService(session).prune(dry_run=True) >= 1
        assert await IdempotencyService(session).prune() >= 1
    stmt = (
        select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.user_id == owner.id)
    )
    assert await count(conns, stmt) == 0


async def test_a_malformed_key_is_422(client: httpx.AsyncClient, make_caller: MakeCaller) -> None:
    owner = await make_caller()
    bad = {**owner.headers, "Idempotency-Key": "has space"}
    answer = await client.post("/api/v1/projects", json={"name": "A"}, headers=bad)
    assert answer.status_code == 422


async def test_a_retried_session_create_and_design_upload_store_one_each(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    h = owner.headers
    project = (await client.post("/api/v1/projects", json={"name": "A"}, headers=h)).json()
    body = {"project_id": project["id"]}
    s1 = await client.post("/api/v1/sessions", json=body, headers=keyed(owner, "s"))
    s2 = await client.post("/api/v1/sessions", json=body, headers=keyed(owner, "s"))
    assert s1.json()["id"] == s2.json()["id"]
    sid = s1.json()["id"]
    uploads = [
        await client.post(
            f"/api/v1/sessions/{sid}/designs",
            files={"file": ("design.html", HTML, "text/html")},
            headers=keyed(owner, "u"),
        )
        for _ in range(2)
    ]
    assert [u.status_code for u in uploads] == [201, 201]
    assert uploads[0].json() == uploads[1].json()
    stmt = select(func.count()).select_from(StoredObject).where(StoredObject.session_id == sid)
    assert await count(store_connections, stmt) == 1
    other = await client.post(
        f"/api/v1/sessions/{sid}/designs",
        files={"file": ("design.html", HTML + b"<p>more</p>", "text/html")},
        headers=keyed(owner, "u"),
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


async def test_templates_from_session_twice_with_one_key_make_one_template(
    client: httpx.AsyncClient, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    h = owner.headers
    project = (await client.post("/api/v1/projects", json={"name": "A"}, headers=h)).json()
    sid = (
        await client.post("/api/v1/sessions", json={"project_id": project["id"]}, headers=h)
    ).json()["id"]
    generation = {
        "name": "Hero",
        "html": "<section>{{ module.title }}</section>",
        "hubspot_config": hubspot_config("Hero"),
    }
    phase = {"phase": "generation", "payload": generation, "progress": 1.0}
    assert (await client.post(f"/api/v1/sessions/{sid}/start", headers=h)).status_code == 200
    assert (
        await client.post(f"/api/v1/sessions/{sid}/phases", json=phase, headers=h)
    ).status_code == 200
    assert (
        await client.post(f"/api/v1/sessions/{sid}/complete", json={}, headers=h)
    ).status_code == 200
    made = [
        await client.post(
            "/api/v1/templates/from-session", json={"session_id": sid}, headers=keyed(owner, "t")
        )
        for _ in range(2)
    ]
    assert [m.status_code for m in made] == [201, 201], made[0].text
    assert made[0].json()["id"] == made[1].json()["id"]
    stmt = select(func.count()).select_from(Template).where(Template.session_id == sid)
    assert await count(store_connections, stmt) == 1

"""Failed authentication is limited per client address; successful traffic is not slowed
(issue #10, finding 11), and token lifetimes have a maximum."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from templator.app import create_app
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port
from tests.api.conftest import Caller
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
BAD = {"Authorization": f"Bearer tpl_{secrets.token_hex(6)}_{'x' * 40}"}


@asynccontextmanager
async def _client(
    conns: Connections, address: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    conf = conns.settings.model_copy(
        update={"auth_failure_limit": 3, "auth_failure_window_seconds": 60, **overrides}
    )
    app = create_app(conf, connections=conns)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def _address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


async def test_too_many_failures_from_one_address_are_429_with_retry_after(
    store_connections: Connections, make_caller: MakeCaller
) -> None:
    user = await make_caller()
    address = _address()
    namespace = f"limit-{uuid.uuid4().hex[:8]}"
    async with _client(store_connections, address, cache_namespace=namespace) as http:
        statuses = [(await http.get("/api/v1/users/me", headers=BAD)).status_code for _ in range(3)]
        limited = await http.get("/api/v1/users/me", headers=BAD)
        valid_but_blocked = await http.get("/api/v1/users/me", headers=user.headers)

    assert statuses == [401, 401, 401]
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.json()["code"] == "too_many_failed_authentications"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert valid_but_blocked.status_code == 429  # the address is blocked, whatever it sends
    async with _client(store_connections, _address(), cache_namespace=namespace) as other:
        assert (await other.get("/api/v1/users/me", headers=user.headers)).status_code == 200


async def test_the_count_is_shared_through_redis_by_every_worker(
    store_connections: Connections,
) -> None:
    address, namespace = _address(), f"limit-{uuid.uuid4().hex[:8]}"
    async with _client(store_connections, address, cache_namespace=namespace) as first:
        for _ in range(3):
            assert (await first.get("/api/v1/users/me", headers=BAD)).status_code == 401
    async with _client(store_connections, address, cache_namespace=namespace) as second:
        assert (await second.get("/api/v1/users/me", headers=BAD)).status_code == 429


async def test_while_redis_is_down_failures_are_limited_in_process(
    settings: Settings,
) -> None:
    assert settings.database_url is not None
    conf = settings.model_copy(update={"redis_retries": 0, "db_read_pool_size": 0})
    dead = f"redis://127.0.0.1:{free_port()}/0"
    conns = Connections(conf, urls=StoreUrls(conf.database_url, dead, None), role=ProcessRole.TEST)
    try:
        async with _client(conns, _address()) as http:
            statuses = [
                (await http.get("/api/v1/users/me", headers=BAD)).status_code for _ in range(4)
            ]
    finally:
        await conns.close()
    assert statuses == [401, 401, 401, 429]


async def test_a_successful_cached_read_makes_one_redis_round_trip_and_no_count(
    store_connections: Connections,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await make_caller()
    project = (
        await client.post("/api/v1/projects", json={"name": "Site"}, headers=owner.headers)
    ).json()
    created = await client.post(
        "/api/v1/templates",
        json={
            "project_id": project["id"],
            "name": "Hero",
            "html_content": "<p>hi</p>",
            "hubspot_config": hubspot_config(),
        },
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert (await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)).status_code == 200
    commands: list[str] = []
    real_execute, real_pipeline = Redis.execute_command, Pipeline.execute

    async def execute(self: Redis, *args: Any, **options: Any) -> Any:
        commands.append(str(args[0]))
        return await real_execute(self, *args, **options)

    async def pipeline(self: Pipeline, *args: Any, **options: Any) -> Any:
        commands.append("pipeline")
        return await real_pipeline(self, *args, **options)

    monkeypatch.setattr(Redis, "execute_command", execute)
    monkeypatch.setattr(Pipeline, "execute", pipeline)

    for _ in range(5):
        read = await client.get(f"/api/v1/templates/{tid}", headers=owner.headers)
        assert read.status_code == 200

    assert commands == ["MGET"] * 5


@pytest.mark.parametrize("expires_days", [366, None])
async def test_a_token_longer_than_the_maximum_is_422_naming_the_field(
    client: httpx.AsyncClient, make_caller: MakeCaller, expires_days: int | None
) -> None:
    user = await make_caller()
    answer = await client.post(
        "/api/v1/tokens", json={"name": "long", "expires_days": expires_days}, headers=user.headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "expires_days"
    ok = await client.post(
        "/api/v1/tokens", json={"name": "short", "expires_days": 365}, headers=user.headers
    )
    assert ok.status_code == 201, ok.text


def _max_days(settings: Settings, days: int) -> Settings:
    """The settings with TOKEN_MAX_DAYS lowered (the app and the endpoints read it there)."""
    return settings.model_copy(update={"token_max_days": days})


async def test_the_document_states_the_configured_token_lifetime(
    store_connections: Connections,
) -> None:
    store_connections.settings = _max_days(store_connections.settings, 30)
    async with _client(store_connections, _address()) as http:
        document = (await http.get("/openapi.json")).json()
    expires = document["components"]["schemas"]["TokenCreate"]["properties"]["expires_days"]
    # No null (a token that never expires is refused) and no more than TOKEN_MAX_DAYS.
    assert expires["type"] == "integer"
    assert (expires["minimum"], expires["maximum"], expires["default"]) == (1, 30, 30)


async def test_a_token_asked_without_a_lifetime_gets_at_most_the_maximum(
    store_connections: Connections, make_caller: MakeCaller
) -> None:
    user = await make_caller()
    store_connections.settings = _max_days(store_connections.settings, 30)
    async with _client(store_connections, _address()) as http:
        answer = await http.post("/api/v1/tokens", json={"name": "short"}, headers=user.headers)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )
    assert timedelta(days=29) < lifetime <= timedelta(days=30)

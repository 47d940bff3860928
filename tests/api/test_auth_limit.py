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
from tests.api.conftest import Caller, new_template

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
    assert limited.json()["code"] == "rate_limited"  # the code the OpenAPI document names
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert valid_but_blocked.status_code == 200  # a valid token is never limited
    async with _client(store_connections, _address(), cache_namespace=namespace) as other:
        assert (await other.get("/api/v1/users/me", headers=user.headers)).status_code == 200


async def test_the_429_code_is_the_one_the_contract_names(
    store_connections: Connections,
) -> None:
    address, namespace = _address(), f"limit-{uuid.uuid4().hex[:8]}"
    async with _client(store_connections, address, cache_namespace=namespace) as http:
        document = (await http.get("/openapi.json")).json()
        for _ in range(4):
            limited = await http.get("/api/v1/users/me", headers=BAD)
    listed = document["paths"]["/api/v1/users/me"]["get"]["responses"]["429"]["x-problem-codes"]
    assert limited.status_code == 429
    assert limited.json()["code"] in listed


async def test_a_victims_valid_token_is_not_limited_by_an_attacker_at_its_address(
    store_connections: Connections, make_caller: MakeCaller
) -> None:
    """21 bad tokens from the victim's address (a shared NAT, a container network's
    gateway, or a forged header a configured proxy passed on) do not lock the victim out,
    on the route or on the cached read's fast path."""
    victim = await make_caller()
    address, namespace = _address(), f"limit-{uuid.uuid4().hex[:8]}"
    async with _client(
        store_connections, address, cache_namespace=namespace, auth_failure_limit=20
    ) as http:
        assert (await http.get("/api/v1/users/me", headers=victim.headers)).status_code == 200
        attacks = [(await http.get("/api/v1/users/me", headers=BAD)).status_code for _ in range(21)]
        me = await http.get("/api/v1/users/me", headers=victim.headers)
        minted = await http.post("/api/v1/tokens", json={"name": "n"}, headers=victim.headers)
    assert attacks[-1] == 429
    assert me.status_code == 200, me.text
    assert minted.status_code == 201, minted.text


async def test_a_forwarded_for_is_believed_only_from_a_configured_proxy(
    store_connections: Connections,
) -> None:
    namespace, proxy, victim = f"limit-{uuid.uuid4().hex[:8]}", _address(), _address()
    forged = {**BAD, "X-Forwarded-For": victim}
    async with _client(store_connections, _address(), cache_namespace=namespace) as stranger:
        for _ in range(4):
            await stranger.get("/api/v1/users/me", headers=forged)
    async with _client(store_connections, victim, cache_namespace=namespace) as own:
        assert (await own.get("/api/v1/users/me", headers=BAD)).status_code == 401  # untouched
    async with _client(
        store_connections, proxy, cache_namespace=namespace, api_forwarded_allow_ips=proxy
    ) as behind_proxy:
        for _ in range(3):
            await behind_proxy.get("/api/v1/users/me", headers=forged)
        # The proxy's word is taken: the victim's address has now failed 1 + 3 times.
        assert (await behind_proxy.get("/api/v1/users/me", headers=forged)).status_code == 429


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
    tid = await new_template(client, owner, name="Hero", html="<p>hi</p>")
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

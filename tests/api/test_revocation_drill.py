"""Revocation is never undone by a cache fault (issue #21, finding 1).

A drill against a redis-server this test starts itself (never the shared one): a token
is revoked and an ADMIN demoted while that Redis is paused (SIGSTOP) or restarting with
its data on disk, so the post-commit invalidation never reaches it and the records cached
before the change are still there when it returns. The token is refused while Redis is
away (PostgreSQL answers), the first time it is used after Redis is back, and no token
can be minted from it; the demoted ADMIN is refused the admin routes likewise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete

from templator.app import create_app
from templator.audit.service import CLI
from templator.auth.cache import record_key
from templator.cache import CACHE_REFUSED
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port
from templator.kit.uow import unit_of_work
from templator.models import User, UserRole
from templator.user.service import UserService
from tests.api.conftest import Caller, new_caller
from tests.support.servers import PrivateRedis
from tests.support.waiting import until

COOL_DOWN = 0.3
"""Seconds the cache waits before trying a failed Redis again (short, for the drill)."""


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis whose data survives its restart (append-only file, fsync always)."""
    server = PrivateRedis(free_port(), data_dir=str(tmp_path))
    server.start()
    yield server
    server.stop()


@dataclass
class Drill:
    client: httpx.AsyncClient
    conns: Connections
    admin: Caller
    user: Caller
    demoted: Caller
    user_token_id: str


@pytest.fixture
async def drill(database_url: str, durable_redis: PrivateRedis) -> AsyncIterator[Drill]:
    """The app on the test database and the private Redis, with short Redis timeouts."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=durable_redis.url,
        redis_retries=0,
        redis_socket_timeout=0.3,
        redis_connect_timeout=0.3,
        cache_namespace="drill",
        cache_signing_key="drill-cache-signing-key-" + "k" * 32,
        auth_failure_limit=1_000_000,
    )
    conns = Connections(
        settings, urls=StoreUrls(database_url, durable_redis.url, None), role=ProcessRole.TEST
    )
    conns.cache.retry_after = COOL_DOWN
    admin, _ = await new_caller(conns, UserRole.ADMIN)
    user, user_token_id = await new_caller(conns, UserRole.USER)
    demoted, _ = await new_caller(conns, UserRole.ADMIN)
    app = create_app(settings, connections=conns)
    try:
        async with app.router.lifespan_context(app):
            await until(lambda: conns.epoch.current is not None)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://drill") as client:
                yield Drill(client, conns, admin, user, demoted, user_token_id)
    finally:
        durable_redis.resume()
        async with conns.sessionmaker() as session:
            await session.execute(delete(User).where(User.id.in_([admin.id, user.id, demoted.id])))
            await session.commit()
        await conns.close()


async def _warm(d: Drill) -> None:
    """Both tokens used once: their records are cached in Redis."""
    assert (await d.client.get("/api/v1/users/me", headers=d.user.headers)).status_code == 200
    assert (await d.client.get("/api/v1/users", headers=d.demoted.headers)).status_code == 200
    cache = d.conns.cache
    for caller in (d.user, d.demoted):
        assert await cache.redis.exists(record_key(cache, caller.token.split("_")[1]))


async def _change_while_away(d: Drill) -> None:
    """Revoke the user's token and demote the ADMIN (each 200, from PostgreSQL)."""
    revoked = await d.client.delete(f"/api/v1/tokens/{d.user_token_id}", headers=d.admin.headers)
    assert revoked.status_code == 200, revoked.text
    demoted = await d.client.put(
        f"/api/v1/users/{d.demoted.id}/role", json={"role": "USER"}, headers=d.admin.headers
    )
    assert demoted.status_code == 200, demoted.text


async def _refused(d: Drill) -> None:
    """The revoked token and the demoted ADMIN get nothing they had."""
    me = await d.client.get("/api/v1/users/me", headers=d.user.headers)
    assert me.status_code == 401, me.text
    minted = await d.client.post("/api/v1/tokens", json={"name": "escape"}, headers=d.user.headers)
    assert minted.status_code == 401, minted.text
    listed = await d.client.get("/api/v1/users", headers=d.demoted.headers)
    assert listed.status_code == 403, listed.text
    audit = await d.client.get("/api/v1/audit", headers=d.demoted.headers)
    assert audit.status_code == 403, audit.text


def _stale_refusals() -> float:
    return float(CACHE_REFUSED.labels("stale")._value.get())  # type: ignore[attr-defined]


async def _back(d: Drill, *callers: Caller) -> None:
    """Redis answers again and the cache uses it (its cool-down is over); the records
    cached before the change are still there, so what follows is read from Redis."""
    await asyncio.sleep(COOL_DOWN + 0.1)
    assert await d.conns.redis.ping()
    cache = d.conns.cache
    for caller in callers or (d.user, d.demoted):
        assert await cache.redis.exists(record_key(cache, caller.token.split("_")[1]))


async def test_a_revocation_and_a_demotion_made_while_redis_is_paused_hold_after_it_resumes(
    drill: Drill, durable_redis: PrivateRedis
) -> None:
    await _warm(drill)

    durable_redis.pause()
    await _change_while_away(drill)
    await _refused(drill)  # through PostgreSQL
    assert drill.conns.cache.stats.bypasses > 0

    durable_redis.resume()
    await _back(drill)
    before = _stale_refusals()
    await _refused(drill)
    assert _stale_refusals() > before  # the old records were read, and not believed


async def test_a_revocation_and_a_demotion_made_while_redis_restarts_hold_after_it_returns(
    drill: Drill, durable_redis: PrivateRedis
) -> None:
    await _warm(drill)

    durable_redis.stop()
    await _change_while_away(drill)
    await _refused(drill)

    durable_redis.start()  # same port, same append-only file: the old records return
    await _back(drill)
    before = _stale_refusals()
    await _refused(drill)
    assert _stale_refusals() > before


async def test_a_record_cached_before_a_revocation_made_by_another_process_is_not_believed(
    drill: Drill, durable_redis: PrivateRedis, database_url: str
) -> None:
    """Another process (its own connection layer, as a second worker or the CLI) erases
    the user while Redis is paused: this process learns the new epoch from PostgreSQL's
    NOTIFY, not from anything it did itself."""
    await _warm(drill)
    other = Connections(
        drill.conns.settings,
        urls=StoreUrls(database_url, durable_redis.url, None),
        role=ProcessRole.CLI,
    )
    other.cache.retry_after = COOL_DOWN
    durable_redis.pause()
    try:
        before = drill.conns.epoch.current
        async with unit_of_work(other.sessionmaker, other.cache) as session:
            await UserService(session, other.cache).erase(drill.user.id, origin=CLI)
        await until(lambda: drill.conns.epoch.current != before)
    finally:
        durable_redis.resume()
        await other.close()
    await _back(drill, drill.user)
    before = _stale_refusals()
    me = await drill.client.get("/api/v1/users/me", headers=drill.user.headers)
    assert me.status_code == 401, me.text
    assert _stale_refusals() > before

"""Redis down mid-test: every service operation is served by PostgreSQL; caching resumes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from templator.ai_session.schemas import AiSessionComplete, AiSessionCreate, PhaseUpdate
from templator.ai_session.service import AiSessionService
from templator.cache import Cache
from templator.config import ProcessRole, Settings
from templator.connections import Connections
from templator.dev.localstack.process import free_port
from templator.kit.pagination import PageParams
from templator.kit.uow import unit_of_work
from templator.models import SessionPhase
from templator.processing_log.schemas import LogLine
from templator.processing_log.service import LogService
from templator.project.schemas import ProjectCreate
from templator.project.service import ProjectService
from templator.redis import create_client
from tests.support.factories import Committed
from tests.support.servers import PrivateRedis


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def outage_cache(private_redis: PrivateRedis) -> AsyncIterator[Cache]:
    """A cache on the private server, with a short cool-down between retries."""
    settings = Settings(_env_file=None, redis_retries=0)  # type: ignore[call-arg]
    client: Redis = create_client(settings, url=private_redis.url, role=ProcessRole.TEST)
    yield Cache(client, namespace="outage", default_ttl=60, retry_after=0.3)
    await client.aclose()


async def _reads(connections: Connections, cache: Cache, committed: Committed) -> None:
    actor = committed.actor
    async with unit_of_work(connections.sessionmaker, cache) as s:
        await ProjectService(s, cache).list_for(actor, actor.id, PageParams())


async def _every_operation(connections: Connections, cache: Cache, committed: Committed) -> None:
    actor, maker = committed.actor, connections.sessionmaker
    async with unit_of_work(maker, cache) as s:
        await ProjectService(s, cache).create(actor, ProjectCreate(name="during outage"))
    async with unit_of_work(maker, cache) as s:
        page = await ProjectService(s, cache).list_for(actor, actor.id, PageParams())
        assert "during outage" in [p.name for p in page.items]
    async with unit_of_work(maker, cache) as s:
        created = await AiSessionService(s, cache).create(
            actor, AiSessionCreate(project_id=committed.project_id)
        )
    async with unit_of_work(maker, cache) as s:
        await AiSessionService(s, cache).start(actor, created.id)
    async with unit_of_work(maker, cache) as s:
        await AiSessionService(s, cache).record_phase(
            actor,
            created.id,
            PhaseUpdate(phase=SessionPhase.UPLOAD, payload={"f": 1}, progress=0.2),
        )
    async with unit_of_work(maker, cache) as s:
        await LogService(s, cache).append_many(
            actor, created.id, [LogLine(phase="upload", message="x")]
        )
    async with unit_of_work(maker, cache) as s:
        state = await AiSessionService(s, cache).get_state(actor, created.id)
        assert state.progress == 0.2
    async with unit_of_work(maker, cache) as s:
        await AiSessionService(s, cache).complete(actor, created.id, AiSessionComplete())
    async with unit_of_work(maker, cache) as s:
        assert (await AiSessionService(s, cache).get_state(actor, created.id)).status == "COMPLETED"


async def test_every_operation_succeeds_from_postgres_while_redis_is_down(
    connections: Connections,
    committed: Committed,
    private_redis: PrivateRedis,
    outage_cache: Cache,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _every_operation(connections, outage_cache, committed)  # warm, Redis up
    assert outage_cache.stats.bypasses == 0

    private_redis.stop()
    with caplog.at_level(logging.WARNING, logger="templator.cache"):
        await _every_operation(connections, outage_cache, committed)
        await asyncio.sleep(0.35)  # past the cool-down: Redis is tried (and fails) again
        await _every_operation(connections, outage_cache, committed)

    unreachable = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(unreachable) == 1
    assert outage_cache.stats.bypasses >= 8


async def test_caching_resumes_by_itself_when_redis_returns_on_the_same_port(
    connections: Connections,
    committed: Committed,
    private_redis: PrivateRedis,
    outage_cache: Cache,
) -> None:
    private_redis.stop()
    await _every_operation(connections, outage_cache, committed)
    bypasses = outage_cache.stats.bypasses
    assert bypasses > 0

    private_redis.start()
    await asyncio.sleep(0.35)  # the cool-down ends; nothing is reset by hand
    await _every_operation(connections, outage_cache, committed)
    hits = outage_cache.stats.hits
    await _reads(connections, outage_cache, committed)  # a miss: loads and stores
    await _reads(connections, outage_cache, committed)  # a hit

    assert outage_cache.stats.hits > hits
    assert outage_cache.stats.bypasses == bypasses

"""The collector's cache and deadline, pool waits and timeouts, evictions: real servers the
tests start, stopped (SIGSTOP) or filled by the tests themselves."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis
from sqlalchemy import text

from templator.app import create_app
from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.redis import LocalRedis
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.postgres import ReadUnavailable
from tests.monitoring.conftest import Scrape, monitored_settings, parse


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    """A Redis of this test's own, which it may stop, fill and evict."""
    folder = PROJECT_ROOT / "var" / f"test-redis-{uuid.uuid4().hex[:8]}"
    server = LocalRedis(folder)
    server.start()
    server.wait_ready()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def _app(conf: Settings, s3_url: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    assert conf.database_url and conf.redis_url
    conns = Connections(
        conf, urls=StoreUrls(conf.database_url, conf.redis_url, s3_url), role=ProcessRole.TEST
    )
    app = create_app(conf, connections=conns)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield http
    finally:
        await conns.close()


async def _scrape(http: httpx.AsyncClient) -> Scrape:
    response = await asyncio.wait_for(http.get("/metrics"), 10)
    assert response.status_code == 200
    return parse(response.text)


def _info_calls(url: str) -> int:
    stats: dict[str, Any] = SyncRedis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_info", {}).get("calls", 0))


async def test_a_warm_cache_asks_each_store_once_per_interval(
    settings: Settings, s3_server: SeaweedFS, private_redis: LocalRedis
) -> None:
    conf = monitored_settings(
        settings, s3_server, redis_url=private_redis.url, metrics_cache_seconds=300
    )
    async with _app(conf) as http:
        first = await _scrape(http)
        asked = _info_calls(private_redis.url)
        for _ in range(5):
            again = await _scrape(http)
        # five scrapes and no INFO from them: the one more is the count just taken
        assert _info_calls(private_redis.url) == asked + 1
    assert again.value("redis_up") == 1
    assert again.value("redis_memory_used_bytes") == first.value("redis_memory_used_bytes")
    assert again.value("templator_store_collector_age_seconds", store="redis") > 0


async def test_a_store_that_stops_answering_never_hangs_a_scrape(
    settings: Settings, s3_server: SeaweedFS, private_redis: LocalRedis
) -> None:
    conf = monitored_settings(
        settings, s3_server, redis_url=private_redis.url, metrics_store_timeout=0.3
    )
    async with _app(conf) as http:
        assert (await _scrape(http)).value("redis_up") == 1
        assert private_redis.process is not None
        os.kill(private_redis.process.pid, signal.SIGSTOP)
        try:
            stopped = await _scrape(http)
            body = (await http.get("/metrics")).text
        finally:
            os.kill(private_redis.process.pid, signal.SIGCONT)
        assert stopped.value("redis_up") == 0
        assert stopped.value("templator_store_collector_success", store="redis") == 0
        assert stopped.value("pg_up") == 1  # the other stores are reported as usual
        assert "redis_memory_used_bytes" not in body
        for _ in range(50):  # once it answers again, so does the next scrape
            if (await _scrape(http)).value("redis_up") == 1:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("redis_up stayed 0 after Redis resumed")


async def test_evictions_and_memory_against_maxmemory(
    settings: Settings, s3_server: SeaweedFS, private_redis: LocalRedis
) -> None:
    redis = SyncRedis.from_url(private_redis.url)
    redis.config_set("maxmemory", "3mb")
    payload = b"x" * 10_000
    for start in range(0, 1000, 100):
        redis.mset({f"fill:{i}": payload for i in range(start, start + 100)})
    conf = monitored_settings(settings, s3_server, redis_url=private_redis.url)
    async with _app(conf) as http:
        found = await _scrape(http)
    assert found.value("redis_memory_max_bytes") == 3 * 1024 * 1024
    assert found.value("redis_evicted_keys_total") > 0
    assert found.value("redis_memory_used_bytes") <= found.value("redis_memory_max_bytes") * 1.1
    assert found.value("redis_db_keys", db="db0") < 1000


async def test_sqlalchemy_pool_waiting_and_timeouts(
    settings: Settings, s3_server: SeaweedFS
) -> None:
    conf = monitored_settings(
        settings, s3_server, db_pool_size=1, db_max_overflow=0, db_pool_timeout=1.0
    )
    async with _app(conf) as http:
        conns: Connections = http._transport.app.state.connections  # type: ignore[attr-defined]

        async def checkout() -> None:
            async with conns.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async with conns.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            waiter = asyncio.create_task(checkout())
            await asyncio.sleep(0.3)
            waiting = await _scrape(http)
            with pytest.raises(Exception, match="QueuePool limit"):
                await waiter
        after = await _scrape(http)
    assert waiting.value("templator_db_pool_waiting", pool="sqlalchemy") == 1
    assert waiting.value("templator_db_pool_connections", pool="sqlalchemy", state="in_use") == 1
    assert after.value("templator_db_pool_waiting", pool="sqlalchemy") == 0
    assert after.value("templator_db_pool_timeouts_total", pool="sqlalchemy") == 1
    assert after.value("templator_db_pool_connections", pool="sqlalchemy", state="idle") == 1


async def test_read_pool_in_use_waiting_and_timeouts(
    settings: Settings, s3_server: SeaweedFS
) -> None:
    conf = monitored_settings(settings, s3_server, db_read_pool_size=1, db_connect_timeout=1)
    async with _app(conf) as http:
        conns: Connections = http._transport.app.state.connections  # type: ignore[attr-defined]
        pool = conns.read_pool
        assert pool is not None
        slow = asyncio.create_task(pool.fetchrow("SELECT pg_sleep(2.5)"))
        await asyncio.sleep(0.5)
        waiter = asyncio.create_task(pool.fetchrow("SELECT 1"))
        await asyncio.sleep(0.3)
        busy = await _scrape(http)
        with pytest.raises(ReadUnavailable):
            await waiter
        await slow
        after = await _scrape(http)
    assert busy.value("templator_db_pool_size", pool="read") == 1
    assert busy.value("templator_db_pool_connections", pool="read", state="in_use") == 1
    assert busy.value("templator_db_pool_waiting", pool="read") == 1
    assert after.value("templator_db_pool_waiting", pool="read") == 0
    assert after.value("templator_db_pool_timeouts_total", pool="read") == 1
    assert after.value("templator_db_pool_connections", pool="read", state="idle") == 1

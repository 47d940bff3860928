"""The cache never becomes the source of truth: outages are bypassed, staleness prevented."""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from templator.cache import Cache
from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.dev.localstack.redis import LocalRedis
from templator.redis import create_client


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    """A Redis server this test owns, so it can stop and restart it."""
    folder = PROJECT_ROOT / "var" / f"test-redis-{uuid.uuid4().hex[:8]}"
    server = LocalRedis(folder)
    server.start()
    server.wait_ready()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        server.process.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def cache_on(private_redis: LocalRedis) -> AsyncIterator[Cache]:
    settings = Settings(_env_file=None, redis_retries=1)  # type: ignore[call-arg]
    client = create_client(settings, url=private_redis.url, role=ProcessRole.TEST)
    yield Cache(client, namespace="outage", default_ttl=60, retry_after=0.5)
    await client.aclose()


def _json(value: dict[str, Any]) -> dict[str, Any]:
    return value


async def test_redis_outage_is_bypassed_logged_once_and_caching_resumes(
    private_redis: LocalRedis, cache_on: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    loads = 0

    async def load() -> dict[str, Any]:
        nonlocal loads
        loads += 1
        return {"value": 42}

    key = cache_on.key("thing", "1")
    for _ in range(3):
        assert await cache_on.get_or_load(key, load, encode=_json, decode=_json) == {"value": 42}
    assert loads == 1 and cache_on.stats.hits == 2

    assert private_redis.process is not None
    private_redis.process.terminate()
    private_redis.process.wait(10)
    caplog.set_level(logging.WARNING, logger="templator.cache")
    for _ in range(20):
        assert await cache_on.get_or_load(key, load, encode=_json, decode=_json) == {"value": 42}
    assert loads == 21
    assert cache_on.stats.bypasses == 20
    outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage_lines) == 1

    private_redis.start()
    private_redis.wait_ready()
    await asyncio.sleep(0.6)
    hits_before = cache_on.stats.hits
    for _ in range(3):
        assert await cache_on.get_or_load(key, load, encode=_json, decode=_json) == {"value": 42}
    # The restarted server may have kept the key (AOF) or not: either way Redis serves again.
    assert cache_on.stats.hits - hits_before >= 2 and loads <= 22
    assert any("caching resumed" in r.getMessage() for r in caplog.records)


async def test_a_load_overtaken_by_a_write_is_not_stored(redis: Redis) -> None:
    cache = Cache(redis, namespace="stale", default_ttl=60)
    key = cache.key("template", "x")
    gate = asyncio.Event()

    async def slow_old_read() -> dict[str, Any]:
        await gate.wait()
        return {"version": "old"}

    reader = asyncio.create_task(cache.get_or_load(key, slow_old_read, encode=_json, decode=_json))
    await asyncio.sleep(0.05)
    await cache.invalidate(key)  # a writer committed meanwhile
    gate.set()
    assert await reader == {"version": "old"}
    assert await redis.get(key) is None
    assert cache.stats.stale_writes_prevented == 1


async def test_purge_uses_scan_and_removes_only_the_namespace(redis: Redis) -> None:
    cache = Cache(redis, namespace="purge", default_ttl=60)
    for i in range(1200):
        await redis.set(f"purge:k{i}", b"1")
    await redis.set("other:k", b"1")
    assert await cache.purge_namespace() == 1200
    assert await redis.get("other:k") == b"1"


async def test_mass_invalidation_drops_every_key_then_publishes_once(redis: Redis) -> None:
    """More keys than one script call takes: all dropped, generations bumped, and the
    messages published once, after the last chunk."""
    cache = Cache(redis, namespace="mass", default_ttl=60)
    keys = [cache.key("template", str(i)) for i in range(1234)]
    await redis.mset({key: b"cached" for key in keys})
    pubsub = redis.pubsub()
    await pubsub.subscribe(cache.channel("events"))
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await cache.invalidate_and_publish(keys, [("events", {"n": 1}), ("events", {"n": 2})])
    assert await redis.exists(*keys) == 0
    generations = await redis.mget([f"{key}:gen" for key in keys])
    assert set(generations) == {b"1"}
    assert 0 < await redis.ttl(f"{keys[0]}:gen") <= 24 * 3600
    received = []
    for _ in range(3):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is not None:
            received.append(message["data"])
    assert received == [b'{"n":1}', b'{"n":2}']
    await pubsub.aclose()


async def test_peek_reads_sealed_values_and_a_failure_marks_redis_down(
    private_redis: LocalRedis, cache_on: Cache
) -> None:
    key = cache_on.key("thing", "peek")
    await cache_on.redis.set(key, cache_on.seal(key, "0", {"v": 1}, 60))
    assert await cache_on.peek(key, cache_on.key("thing", "absent")) == [{"v": 1}, None]
    assert cache_on.stats.hits == 0  # peeking counts nothing; the caller counts what it serves

    assert private_redis.process is not None
    private_redis.process.terminate()
    private_redis.process.wait(10)
    assert await cache_on.peek(key) is None
    assert not cache_on.available  # the next lookups bypass at once instead of retrying


async def test_values_of_another_key_or_process_key_or_past_their_seal_are_refused(
    redis: Redis,
) -> None:
    cache = Cache(redis, namespace="seal", default_ttl=60, signing_key=b"k" * 32)
    other = Cache(redis, namespace="seal", default_ttl=60, signing_key=b"x" * 32)
    key, elsewhere = cache.key("thing", "a"), cache.key("thing", "b")
    sealed = cache.seal(key, "0", {"v": 1}, 60)
    await redis.set(key, sealed)
    await redis.set(elsewhere, sealed)  # moved to another key

    assert await cache.peek(key, elsewhere) == [{"v": 1}, None]
    assert await other.peek(key) == [None]  # another key never verifies it
    await redis.incr(cache._generation_key(key))  # an invalidation happened since
    assert await cache.peek(key) == [None]
    await redis.set(key, cache.seal(key, "1", {"v": 1}, -1))
    assert await cache.peek(key) == [None]  # its sealed expiry has passed


async def test_a_refused_value_is_replaced_from_the_loader(redis: Redis) -> None:
    cache = Cache(redis, namespace="seal", default_ttl=60)
    key = cache.key("thing", "forged")
    await redis.set(key, b'{"v":"forged"}')

    async def load() -> dict[str, Any]:
        return {"v": "truth"}

    assert await cache.get_or_load(key, load, encode=_json, decode=_json) == {"v": "truth"}
    assert await cache.peek(key) == [{"v": "truth"}]


async def test_peeks_of_one_loop_turn_share_one_pipeline_and_each_gets_its_own_values(
    cache_on: Cache,
) -> None:
    """Fifty concurrent peeks (a burst of cached reads) go out as one pipeline on one
    pooled connection, not fifty MGETs on fifty connections, and each gets its values."""
    keys = [cache_on.key("thing", f"batch{i}") for i in range(50)]
    for i, key in enumerate(keys):
        await cache_on.redis.set(key, cache_on.seal(key, "0", {"v": i}, 60))
    pool = cache_on.redis.connection_pool

    def made() -> int:  # connections the pool has made so far, in use or idle
        return len(pool._available_connections) + len(pool._in_use_connections)  # type: ignore[attr-defined]

    made_before = made()

    answers = await asyncio.gather(
        *(cache_on.peek(key, cache_on.key("thing", "absent")) for key in keys)
    )

    assert answers == [[{"v": i}, None] for i in range(50)]
    assert made() - made_before <= 1, (made_before, made())


async def test_a_cancelled_peek_leaves_the_others_of_its_batch_answered(cache_on: Cache) -> None:
    key = cache_on.key("thing", "kept")
    await cache_on.redis.set(key, cache_on.seal(key, "0", {"v": 1}, 60))
    first = asyncio.ensure_future(cache_on.peek(key))
    gone = asyncio.ensure_future(cache_on.peek(key))
    last = asyncio.ensure_future(cache_on.peek(key))
    await asyncio.sleep(0)  # all three joined the batch
    gone.cancel()
    assert await first == [{"v": 1}] and await last == [{"v": 1}]
    assert gone.cancelled()

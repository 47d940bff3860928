"""The Redis client of `templator.redis`: what it does when its server goes away and returns."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from templator.config import ProcessRole, Settings
from templator.dev.localstack.process import free_port
from templator.redis import create_client
from tests.support.servers import PrivateRedis


@pytest.fixture
def restartable() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    server.start()
    yield server
    server.stop()


async def test_pooled_connections_reconnect_after_a_server_restart(
    restartable: PrivateRedis,
) -> None:
    """Every pooled connection is stale after a restart; the client's retry policy must
    reconnect on the first failure instead of raising it (an asyncio client needs the
    asyncio Retry: the synchronous one returns the coroutine unawaited, so nothing was
    ever retried and each stale connection pushed the cache into bypass once more)."""
    settings = Settings(_env_file=None, redis_retries=2)  # type: ignore[call-arg]
    client = create_client(settings, url=restartable.url, role=ProcessRole.TEST)
    try:
        # Five connections in the pool, all idle.
        await asyncio.gather(*(client.blpop("nothing", 0.1) for _ in range(5)))
        assert len(client.connection_pool._available_connections) == 5  # type: ignore[attr-defined]
        restartable.stop()
        restartable.start()
        for _ in range(5):
            assert await client.mget("a", "b") == [None, None]
    finally:
        await client.aclose()

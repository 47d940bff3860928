"""The Redis client: short timeouts, retries with backoff, a client name per process role."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from templator.config import ProcessRole, Settings


def describe_url(url: str) -> str:
    """host:port/db of a Redis URL, without credentials, for messages."""
    rest = url.split("://", 1)[-1].rsplit("@", 1)[-1]
    return rest or url


def create_client(settings: Settings, *, url: str, role: ProcessRole) -> Redis:
    """Build the pooled async client; connections are opened lazily.

    A blocking pool: under a burst wider than the pool, callers wait (up to the socket
    timeout) for a free connection instead of failing with "Too many connections",
    which would push the cache into bypass for no reason.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), settings.redis_retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        client_name=f"templator-{role.value}",
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)

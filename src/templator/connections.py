"""The connection layer (the plan's DatabaseManager, done right).

One `Connections` object is built at start-up (the app's lifespan, a CLI command's own
context, a test fixture) and closed at shutdown; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from templator import postgres
from templator import redis as redis_factory
from templator.cache import Cache
from templator.config import ProcessRole, Settings
from templator.exceptions import ServiceUnavailable
from templator.monitoring.health import HealthReport, Probe, run_checks
from templator.signing import cache_signing_key
from templator.storage.service import ObjectStore


@dataclass(frozen=True, slots=True)
class StoreUrls:
    """Where the stores are."""

    database_url: str
    redis_url: str
    s3_endpoint_url: str | None
    cache_signing_key_file: Path | None = None
    admin_database_url: str | None = None
    """The schema owner's URL (migrations, seed); None = database_url."""


class StackNotConfigured(ServiceUnavailable):
    """No store URL is set and no local stack is running."""


def resolve_urls(settings: Settings) -> StoreUrls:
    """Configured URLs, else those of a running `templator up` stack, else a clear error.

    The stack fills in only what is unset, and only when PostgreSQL or Redis is unset:
    with both URLs configured nothing local is used (and no S3 URL means no object store).
    """
    database_url, redis_url, s3_url = (
        settings.database_url,
        settings.redis_url,
        settings.s3_endpoint_url,
    )
    key_file: Path | None = None
    admin_url = settings.database_admin_url
    if database_url is None or redis_url is None:
        from templator.localstack import discover_running_stack

        stack = discover_running_stack(settings.var_dir)
        if stack is not None:
            database_url = database_url or stack.database_url
            redis_url = redis_url or stack.redis_url
            s3_url = s3_url or stack.s3_endpoint_url
            key_file = stack.cache_signing_key_file
            if settings.database_url is None:
                admin_url = admin_url or stack.admin_database_url
    missing = [
        name
        for name, value in (("DATABASE_URL", database_url), ("REDIS_URL", redis_url))
        if value is None
    ]
    if missing or database_url is None or redis_url is None:
        raise StackNotConfigured(
            f"{' and '.join(missing)} not set and no local stack is running under "
            f"{settings.var_dir}: start one with `templator up`, or set {missing[0]} "
            "(see .env.example)."
        )
    return StoreUrls(database_url, redis_url, s3_url, key_file, admin_url)


class Connections:
    """Owns the PostgreSQL engine, the Redis client, the cache and the object store."""

    def __init__(self, settings: Settings, *, urls: StoreUrls, role: ProcessRole) -> None:
        self.settings = settings
        self.urls = urls
        self.role = role
        self.engine: AsyncEngine = postgres.create_engine(
            settings, url=urls.database_url, role=role
        )
        self.sessionmaker: async_sessionmaker[AsyncSession] = postgres.create_sessionmaker(
            self.engine
        )
        # Single-statement reads (cache misses of hot lookups): autocommit, so no BEGIN
        # and ROLLBACK round trips around the one SELECT. Never used for writes.
        self.read_sessionmaker: async_sessionmaker[AsyncSession] = postgres.create_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # The hot read's fast path (api/fastpath.py); opened by the API's lifespan.
        self.read_pool: postgres.ReadPool | None = None
        self.redis: Redis = redis_factory.create_client(settings, url=urls.redis_url, role=role)
        self.cache = Cache(
            self.redis,
            namespace=settings.cache_namespace,
            default_ttl=settings.cache_ttl_seconds,
            signing_key=cache_signing_key(settings, stack_key_file=urls.cache_signing_key_file),
        )
        self.store: ObjectStore | None = (
            ObjectStore.from_settings(settings, endpoint_url=urls.s3_endpoint_url)
            if urls.s3_endpoint_url
            else None
        )

    def require_store(self) -> ObjectStore:
        """The object store, or a clear error when none is configured."""
        if self.store is None:
            raise ServiceUnavailable(
                "no object store is configured: set S3_ENDPOINT_URL (or run `templator up`)"
            )
        return self.store

    @classmethod
    def from_settings(cls, settings: Settings, *, role: ProcessRole) -> Connections:
        """Build from settings, resolving the embedded stack's URLs when none are set."""
        return cls(settings, urls=resolve_urls(settings), role=role)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open_read_pool(self) -> None:
        """Open the hot-read pool (`postgres.ReadPool`) unless DB_READ_POOL_SIZE is 0 or
        it is open already. It connects on first use."""
        if self.read_pool is None and self.settings.db_read_pool_size > 0:
            pool = postgres.ReadPool(self.settings, url=self.urls.database_url, role=self.role)
            await pool.open()
            self.read_pool = pool

    async def close(self) -> None:
        """Close the pools and the client; safe to call twice."""
        if self.read_pool is not None:
            await self.read_pool.close()
            self.read_pool = None
        await self.engine.dispose()
        await self.redis.aclose()

    async def verify_database(self) -> None:
        """Fail fast, with the host and what to check, when PostgreSQL cannot be reached."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            where = postgres.describe_url(self.urls.database_url)
            lines = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
            reason = lines[0] if lines else type(exc).__name__
            raise ServiceUnavailable(
                f"cannot reach PostgreSQL at {where}: {reason}. "
                "Check that the server is running and that DATABASE_URL (host, port, user, "
                "database) is right."
            ) from exc

    async def verify_redis(self) -> None:
        """Fail fast when Redis cannot be reached."""
        try:
            await self.redis.ping()
        except Exception as exc:
            where = redis_factory.describe_url(self.urls.redis_url)
            raise ServiceUnavailable(
                f"cannot reach Redis at {where}: {exc}. Check that the server is running "
                "and that REDIS_URL is right."
            ) from exc

    async def _probe_postgres(self) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
        pool = self.engine.pool
        return {"server_version": version, "pool": pool.status()}

    async def _probe_redis(self) -> dict[str, Any]:
        await self.redis.ping()
        info = await self.redis.info("memory")
        return {
            "used_memory": info.get("used_memory"),
            "maxmemory": info.get("maxmemory"),
            "maxmemory_policy": info.get("maxmemory_policy"),
        }

    async def _probe_store(self) -> dict[str, Any]:
        store = self.require_store()
        return await asyncio.to_thread(store.probe)

    def health_probes(self) -> list[tuple[str, str, Probe]]:
        """The probes `health()` runs: (name, target, probe)."""
        probes: list[tuple[str, str, Probe]] = [
            ("postgres", postgres.describe_url(self.urls.database_url), self._probe_postgres),
            ("redis", redis_factory.describe_url(self.urls.redis_url), self._probe_redis),
        ]
        if self.store is not None:
            probes.append(("object_store", self.store.endpoint_url, self._probe_store))
        return probes

    async def health(self, *, timeout: float = 3.0) -> HealthReport:
        """Each component's status, latency and error, checked concurrently."""
        return await run_checks(self.health_probes(), timeout=timeout)

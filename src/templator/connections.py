"""The connection layer: one process's PostgreSQL engines, Redis client, cache and
object store, and their health.

One `Connections` object is built at start-up (the app's lifespan, a CLI command's own
context, a test fixture) and closed at shutdown; nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from templator import postgres
from templator import redis as redis_factory
from templator.cache import Cache
from templator.config import ProcessRole, Settings
from templator.driver_pool import DriverPool, StatementPool
from templator.epoch import EpochWatch
from templator.exceptions import ServiceUnavailable
from templator.health.checks import Check, HealthReport, Role, run_checks
from templator.health.schema import SchemaCheck
from templator.kit.uow import read_session
from templator.signing import cache_signing_key
from templator.storage.errors import require_store
from templator.storage.service import ObjectStore
from templator.store_urls import (
    StackFinder,
    StackNotConfigured,
    StoreUrls,
    resolve_database_url,
    resolve_urls,
    with_store_keys,
)

log = logging.getLogger("templator.connections")
T = TypeVar("T")


__all__ = [
    "Connections",
    "StackNotConfigured",
    "StoreUrls",
    "resolve_database_url",
    "resolve_urls",
    "store_outage",
    "verify_database",
]


class Connections:
    """Owns the PostgreSQL engine, the Redis client, the cache and the object store."""

    def __init__(self, settings: Settings, *, urls: StoreUrls, role: ProcessRole) -> None:
        settings = with_store_keys(settings, urls)
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
        # and ROLLBACK round trips around the one SELECT. Never used for writes. Behind
        # PgBouncer they stay transactions: the statement timeout is set per transaction.
        self.read_sessionmaker: async_sessionmaker[AsyncSession] = postgres.create_sessionmaker(
            self.engine
            if settings.db_pgbouncer
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        # Units of work that run on the driver alone (the session lifecycle, the work
        # queue: `driver_pool.py`); not behind PgBouncer, whose per-transaction timeout
        # is set by the engine.
        self.driver_pool: DriverPool | None = (
            DriverPool(settings, url=urls.database_url, role=role)
            if settings.db_driver_pool_size > 0 and not settings.db_pgbouncer
            else None
        )
        # The statements of units that commit each one by itself (a worker's claim,
        # heartbeat, phase, completion): asyncpg on the primary (`driver_pool.py`).
        self.statement_pool: StatementPool | None = (
            StatementPool(
                settings, url=urls.database_url, role=role, size=settings.db_statement_pool_size
            )
            if settings.db_statement_pool_size > 0
            and self.driver_pool is not None
            and not settings.db_pgbouncer
            else None
        )
        # Reads that tolerate replication lag (template search): on the replica when one
        # is configured (`replica_read`), which falls back to the primary when it fails.
        self.replica_engine: AsyncEngine | None = None
        self.replica_sessionmaker: async_sessionmaker[AsyncSession] | None = None
        if urls.database_replica_url:
            self.replica_engine = postgres.create_engine(
                settings, url=urls.database_replica_url, role=role
            )
            self.replica_sessionmaker = postgres.create_sessionmaker(
                self.replica_engine
                if settings.db_pgbouncer
                else self.replica_engine.execution_options(isolation_level="AUTOCOMMIT")
            )
        # The hot read's fast path (api/fastpath.py), on the replica when there is one;
        # opened by the API's lifespan.
        self.read_pool: postgres.ReadPool | None = None
        self.redis: redis_factory.RedisClient = redis_factory.create_client(
            settings, url=urls.redis_url, role=role
        )
        # The authentication epoch cached token records must carry (`epoch.py`): watched
        # by the processes that authenticate (the API's lifespan starts it).
        self.epoch = EpochWatch(settings, url=urls.database_url, role=role)
        self.cache = Cache(
            self.redis,
            namespace=settings.cache_namespace,
            default_ttl=settings.cache_ttl_seconds,
            signing_key=cache_signing_key(settings, stack_key_file=urls.cache_signing_key_file),
            epoch=self.epoch,
        )
        self.store: ObjectStore | None = (
            ObjectStore.from_settings(settings, endpoint_url=urls.s3_endpoint_url)
            if urls.s3_endpoint_url
            else None
        )
        self.schema_check = SchemaCheck()

    def require_store(self) -> ObjectStore:
        """The object store, or a clear error when none is configured."""
        return require_store(self.store)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, role: ProcessRole, find_stack: StackFinder | None = None
    ) -> Connections:
        """Build from settings; where no URL is set, from the running local stack that
        `find_stack` finds (the CLI passes one; the connection layer knows no stack)."""
        return cls(settings, urls=resolve_urls(settings, find_stack=find_stack), role=role)

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
            url = self.urls.database_replica_url or self.urls.database_url
            pool = postgres.ReadPool(self.settings, url=url, role=self.role)
            await pool.open()
            self.read_pool = pool

    async def close(self) -> None:
        """Close the pools and the client; safe to call twice."""
        await self.epoch.stop()
        if self.read_pool is not None:
            await self.read_pool.close()
            self.read_pool = None
        if self.driver_pool is not None:
            await self.driver_pool.close()
        if self.statement_pool is not None:
            await self.statement_pool.close()
        await self.engine.dispose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()
        await self.redis.aclose()

    async def replica_read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run read-only `work` on the replica, or on the primary when there is none or
        the replica cannot be reached (a replica is a speed-up, never a new way to fail).
        A statement the replica refused for its own reasons (a timeout, a conflict with
        recovery) is not retried."""
        if self.replica_sessionmaker is not None:
            try:
                async with self.replica_sessionmaker() as session:
                    return await work(session)
            except (OperationalError, InterfaceError) as exc:
                if not postgres.is_connection_lost(exc):
                    raise
                log.warning(
                    "replica %s unreachable (%s): reading from the primary",
                    postgres.describe_url(self.urls.database_replica_url or ""),
                    str(exc.orig or exc).strip().splitlines()[0],
                )
        async with read_session(self.read_sessionmaker) as session:
            return await work(session)

    async def verify_database(self) -> None:
        """Fail fast, with the host and what to check, when PostgreSQL cannot be reached."""
        await verify_database(self.engine, self.urls.database_url)

    def outage(self, exc: BaseException) -> ServiceUnavailable | None:
        """`exc` as "this store, at this address, cannot be reached", if it is that."""
        return store_outage(exc, database_url=self.urls.database_url, redis_url=self.urls.redis_url)

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

    async def _probe_postgres(self, timeout: float) -> dict[str, Any]:
        # Every wait on the server is bounded by the probe's own timeout, so a hung server
        # is reported in time and its connection closed (not left to the statement bound).
        with postgres.bounded_waits(timeout):
            async with self.engine.connect() as conn:
                version = (await conn.execute(text("SHOW server_version"))).scalar_one()
        details: dict[str, Any] = {
            "server_version": version,
            "pool": postgres.pool_stats(self.engine),
        }
        if self.read_pool is not None:
            details["read_pool"] = self.read_pool.stats()
        if self.driver_pool is not None:
            details["driver_pool"] = self.driver_pool.stats()
        if self.statement_pool is not None:
            details["statement_pool"] = self.statement_pool.stats()
        return details

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

    async def _probe_schema(self) -> dict[str, Any]:
        return await self.schema_check.probe(self.engine)

    def health_probes(self, *, timeout: float = 3.0) -> list[Check]:
        """The probes `health()` runs: (name, target, probe, role)."""
        probes: list[Check] = [
            (
                "postgres",
                postgres.describe_url(self.urls.database_url),
                lambda: self._probe_postgres(timeout * 0.9),
                Role.REQUIRED,
            ),
            (
                "redis",
                redis_factory.describe_url(self.urls.redis_url),
                self._probe_redis,
                Role.CACHE,
            ),
        ]
        if self.store is not None:
            probes.append(
                ("object_store", self.store.endpoint_url, self._probe_store, Role.UPLOADS)
            )
        # The schema revision against the code's head (deploy area): ready only once migrated.
        probes.append(("schema", "alembic_version", self._probe_schema, Role.REQUIRED))
        return probes

    async def health(self, *, timeout: float = 3.0) -> HealthReport:
        """Each component's status, latency and error, checked concurrently."""
        return await run_checks(self.health_probes(timeout=timeout), timeout=timeout)


async def verify_database(engine: AsyncEngine, url: str) -> None:
    """Fail fast, with the host and what to check, when PostgreSQL cannot be reached."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        where = postgres.describe_url(url)
        lines = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise ServiceUnavailable(
            f"cannot reach PostgreSQL at {where}: {reason}. "
            "Check that the server is running and that DATABASE_URL (host, port, user, "
            "database) is right."
        ) from exc


def store_outage(
    exc: BaseException, *, database_url: str, redis_url: str | None = None
) -> ServiceUnavailable | None:
    """A lost or refused PostgreSQL or Redis connection as a ServiceUnavailable naming the
    store and its address (never its password); None for any other error."""
    if isinstance(exc, DBAPIError | psycopg.OperationalError):
        if isinstance(exc, DBAPIError) and not isinstance(
            exc, sqlalchemy_exc.OperationalError | sqlalchemy_exc.InterfaceError
        ):
            return None
        lines = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        return ServiceUnavailable(
            f"cannot reach PostgreSQL at {postgres.describe_url(database_url)}: {reason}. "
            "Check that the server is running and that DATABASE_URL is right."
        )
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        where = f" at {redis_factory.describe_url(redis_url)}" if redis_url else ""
        return ServiceUnavailable(
            f"cannot reach Redis{where}: {exc}. "
            "Check that the server is running and that REDIS_URL is right."
        )
    return None

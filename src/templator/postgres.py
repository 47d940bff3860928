"""The async SQLAlchemy engine on psycopg 3, how sessions are made from it, and the
small asyncpg pool of the API's hottest read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from templator.config import ProcessRole, Settings

_RETURNED_AT = "templator.returned_at"


def describe_url(url: str) -> str:
    """host:port/database of a URL, without credentials, for messages."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "local socket"
    return f"{host}:{parsed.port or 5432}/{parsed.database or ''}"


def create_engine(settings: Settings, *, url: str, role: ProcessRole) -> AsyncEngine:
    """Build the pooled engine: pre-ping, recycle, short connect timeout, named connections."""
    options = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    idle_ping = settings.db_pool_pre_ping and settings.db_pool_ping_after_idle > 0
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping and not idle_ping,
        poolclass=MeteredQueuePool,
        echo=settings.db_echo,
        connect_args={
            "connect_timeout": settings.db_connect_timeout,
            "application_name": f"templator-{role.value}",
            "options": options,
        },
    )
    if idle_ping:
        ping_after_idle(engine.sync_engine, settings.db_pool_ping_after_idle)
    return engine


class MeteredQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, counting who waits for a connection and who gave
    up (monitoring/pools.py); SQLAlchemy itself only reports size and checked-out."""

    waiting = 0
    timeouts = 0

    def _do_get(self) -> ConnectionPoolEntry:
        # Every connection the pool may open is out and none has come back: this
        # checkout waits in the queue (up to DB_POOL_TIMEOUT).
        blocked = self._overflow >= self._max_overflow and self.checkedin() == 0
        if blocked:
            self.waiting += 1
        try:
            return super()._do_get()
        except PoolTimeout:
            self.timeouts += 1
            raise
        finally:
            if blocked:
                self.waiting -= 1


class ReadUnavailable(Exception):
    """The hot-read pool could not answer (no connection in time, a lost connection, a
    server error); the caller takes its ordinary path instead."""


class ReadPool:
    """A small asyncpg pool of the API's hottest read (api/fastpath.py).

    Measured (docs/benchmarks.md): for one single-row SELECT, psycopg's async cursor
    costs about 75 µs of client CPU and an SQLAlchemy checkout more than that again;
    asyncpg, whose protocol is compiled, about 40 µs. On 2 cores that is most of the
    difference between 0.28× and 0.38× of a bare endpoint's throughput for a read that
    cannot come from the cache. This pool serves that one read and nothing else: every
    write, and every other read, goes through the SQLAlchemy engine.

    Waiters are served first come, first served (a semaphore in front of the pool):
    asyncpg's own queue lets a newcomer take a connection just released ahead of a
    waiter, which at saturation gave a p95 of 84 ms against a p50 of 16 ms; in turn,
    the same load gave a p95 of 24 ms.

    Connections are made on demand (none at start-up, so a database that is down does
    not stop the API from starting; with Redis up, none at all) and closed after 5
    minutes unused; they are named `templator-<role>-reads` in pg_stat_activity and run
    with the engine's statement timeout. asyncpg prepares each statement once per
    connection. Nothing is reset on release: the connections only run autocommit
    SELECTs.
    """

    def __init__(self, settings: Settings, *, url: str, role: ProcessRole) -> None:
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._settings = settings
        self._role = role
        self._pool: Any = None
        self._turns = asyncio.Semaphore(settings.db_read_pool_size)
        self.waiting = 0
        self.timeouts = 0

    async def open(self) -> None:
        """Create the pool (it connects on first use)."""
        settings = self._settings
        self._pool = await asyncpg.create_pool(
            self._conninfo,
            min_size=0,
            max_size=settings.db_read_pool_size,
            timeout=settings.db_connect_timeout,
            init=_init_read_connection,
            reset=_keep_session,
            server_settings={
                "application_name": f"templator-{self._role.value}-reads",
                "statement_timeout": str(settings.db_statement_timeout_ms),
            },
        )

    async def close(self) -> None:
        """Close every connection (waiting for those in use)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def stats(self) -> dict[str, int]:
        """Connections allowed, open, in use and idle; callers waiting; waits given up."""
        pool = self._pool
        size = pool.get_size() if pool is not None else 0
        idle = pool.get_idle_size() if pool is not None else 0
        return {
            "max": self._settings.db_read_pool_size,
            "open": size,
            "in_use": size - idle,
            "idle": idle,
            "waiting": self.waiting,
            "timeouts": self.timeouts,
        }

    async def fetchrow(self, query: str, *args: Any) -> Sequence[Any] | None:
        """The first row of `query` ($1, $2… placeholders), or None; ReadUnavailable
        when the pool cannot answer within DB_CONNECT_TIMEOUT or the statement fails."""
        if self._pool is None:
            raise ReadUnavailable("the read pool is not open")
        if self._turns.locked():  # every connection busy: wait in line, not for ever
            self.waiting += 1
            try:
                async with asyncio.timeout(self._settings.db_connect_timeout):
                    await self._turns.acquire()
            except TimeoutError as exc:
                self.timeouts += 1
                raise ReadUnavailable("no read connection free in time") from exc
            finally:
                self.waiting -= 1
        else:
            await self._turns.acquire()  # returns at once
        try:
            # A turn guarantees a free connection (as many turns as connections), so no
            # timeout here: asyncpg wraps a timed acquire in a task of its own. Making a
            # new connection is bounded by the pool's connect timeout.
            async with self._pool.acquire() as conn:
                row: Sequence[Any] | None = await conn.fetchrow(query, *args)
                return row
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise ReadUnavailable(str(exc) or type(exc).__name__) from exc
        finally:
            self._turns.release()


async def _init_read_connection(conn: Any) -> None:
    """JSON columns parsed by orjson, as the rest of the code base does."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: Any) -> None:
    """asyncpg's default release resets the session (one more round trip per use);
    these connections change no session state, so there is nothing to reset."""


def ping_after_idle(engine: Engine, seconds: float) -> None:
    """Pessimistic disconnect handling that costs nothing on a busy pool.

    SQLAlchemy's `pool_pre_ping` sends `SELECT 1` on every checkout: one extra round trip
    per transaction, about a tenth of a short transaction's time. A connection that went
    back to the pool moments ago is as good as the ping would prove, so only connections
    idle for `seconds` or more are tested; a failed test makes the pool replace the
    connection (DisconnectionError), as pre-ping does.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection lost while idle: {exc}") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no hidden reloads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

"""A small pool of psycopg connections for units of work that run on the driver alone.

Why: a unit of work on SQLAlchemy's `AsyncSession` costs, besides its statements, a
session and a `SessionTransaction`, a pool checkout and check-in with their events, and
two hops into SQLAlchemy's greenlet (begin, commit). For the session lifecycle's short
transactions that was more than the statements themselves (docs/benchmarks.md, "AI
session lifecycle"). The hot repositories already run text SQL on the psycopg
connection (`kit/repository.py`); a unit of work made with this pool (`kit/uow.py`,
`unit_of_work(..., driver=pool)`) takes its connection from here the first time a
repository asks for it, and commits it directly: no SQLAlchemy machinery at all.

Why not `psycopg_pool`: it is well made, but when the server is down a checkout waits
for its background workers' reconnection attempts until the pool timeout, where
SQLAlchemy's pool (and this one) fails at once with the connection error, which the API
answers as 503 `database_unavailable` within the connect timeout — the outage drills
hold the platform to that. The mechanics are those of `postgres.ReadPool` (a deque of
idle connections, newest first; a first-come-first-served semaphore of turns); the
connections are the engine's own kind (`postgres.DeadlineConnection`, same timeouts,
keepalives and name), and a connection idle for DB_POOL_PING_AFTER_IDLE seconds is
tested before use, as the engine's pre-ping does.

When code in such a unit uses SQLAlchemy after a raw statement (a service whose
repository is written in Core, an ORM add), the session is bound to an engine of the
unit's own connection (`engine_for`: SQLAlchemy's `StaticPool` of that one connection,
no reset on return), so both run in one transaction; SQLAlchemy's commit or rollback is
then the unit's. That engine is made once per pooled connection, on its first such use.

Behind PgBouncer (DB_PGBOUNCER) no pool is made: the engine's per-transaction
`SET LOCAL statement_timeout` is SQLAlchemy's; those units run on the session.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from templator import postgres
from templator.config import ProcessRole, Settings
from templator.postgres import (
    DatabaseNotAnswering,
    DeadlineConnection,
    NoTurn,
    ReadPool,
    Turns,
    keepalive_params,
)

T = TypeVar("T")

Connection = psycopg.AsyncConnection[Any]


class DriverPoolTimeout(PoolTimeout):
    """Every driver connection stayed busy for DB_POOL_TIMEOUT seconds (the API answers
    503 `busy`, as for the engine's pool)."""


class DriverPool:
    """Connections handed to units of work, one at a time each; see the module docstring."""

    IDLE_LIFETIME = 300.0

    def __init__(self, settings: Settings, *, url: str, role: ProcessRole) -> None:
        self._url = make_url(url)
        self._conninfo = self._url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._engines: dict[int, AsyncEngine] = {}
        self._settings = settings
        self._kwargs: dict[str, Any] = {
            "connect_timeout": settings.db_connect_timeout,
            "application_name": f"templator-{role.value}",
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
            **keepalive_params(settings),
        }
        self.size = settings.db_driver_pool_size
        self._idle: deque[tuple[Connection, float]] = deque()
        self.turns = Turns(self.size)
        self._closed = False
        self.open = 0

    async def take(self, *, autocommit: bool = False) -> Connection:
        """A connection with no transaction open, in `autocommit` mode or not (then a
        transaction begins at its first statement). An idle connection already in that
        mode is preferred: switching costs a pass through psycopg's lock and wait."""
        if self._closed:
            raise psycopg.InterfaceError("the driver pool is closed")
        try:  # every connection busy: wait in line, bounded
            await self.turns.take(self._settings.db_pool_timeout)
        except TimeoutError as exc:
            raise DriverPoolTimeout(
                f"no driver connection free within {self._settings.db_pool_timeout:g}s"
            ) from exc
        try:
            conn = await self._idle_or_new(autocommit)
            if conn.autocommit != autocommit:
                await conn.set_autocommit(autocommit)
        except BaseException:
            self.turns.give_back()
            raise
        return conn

    async def give_back(self, conn: Connection) -> None:
        """Return `conn`: kept when it is idle and healthy, rolled back when a transaction
        is still open, dropped when broken or the pool is closing."""
        try:
            status = conn.info.transaction_status
            open_transaction = (TransactionStatus.INTRANS, TransactionStatus.INERROR)
            if not self._closed and status in open_transaction:
                try:
                    await conn.rollback()
                    status = conn.info.transaction_status
                except psycopg.Error:
                    status = TransactionStatus.UNKNOWN
            if self._closed or conn.closed or status is not TransactionStatus.IDLE:
                await self._drop(conn)
            else:
                self._idle.append((conn, time.monotonic()))
        finally:
            self.turns.give_back()

    async def discard(self, conn: Connection) -> None:
        """Close `conn` (its state is in doubt: a lost connection, a cancelled wait)."""
        try:
            await self._drop(conn)
        finally:
            self.turns.give_back()

    async def close(self) -> None:
        """Close the idle connections; those in use close when given back."""
        self._closed = True
        while self._idle:
            conn, _ = self._idle.pop()
            await self._drop(conn)

    async def engine_for(self, conn: Connection) -> AsyncEngine:
        """An SQLAlchemy engine whose only connection is `conn` (see the module docstring).
        Call it while `conn` has no transaction open: a new engine connects once at once,
        because SQLAlchemy's first connection runs its dialect's set-up queries and then
        a rollback, which must not meet a unit's work."""
        engine = self._engines.get(id(conn))
        if engine is None:

            async def this_connection() -> Connection:
                return conn

            engine = create_async_engine(
                self._url,
                poolclass=StaticPool,
                async_creator=this_connection,
                pool_reset_on_return=None,  # the unit ends the transaction, not the pool
            )
            async with engine.connect():
                pass
            self._engines[id(conn)] = engine
        return engine

    def stats(self) -> dict[str, int]:
        """The same figures as `postgres.pool_stats` names for the engine's pool."""
        return self.turns.stats(self.size, self.open, len(self._idle))

    async def _idle_or_new(self, autocommit: bool) -> Connection:
        now = time.monotonic()
        while self._idle and now - self._idle[0][1] > self.IDLE_LIFETIME:
            stale, _ = self._idle.popleft()
            await self._drop(stale)
        settings = self._settings
        ping_after = settings.db_pool_ping_after_idle if settings.db_pool_pre_ping else None
        for at in range(len(self._idle) - 1, -1, -1):  # the newest in the wanted mode
            if self._idle[at][0].autocommit == autocommit:
                item = self._idle[at]
                del self._idle[at]
                self._idle.append(item)  # taken next, below
                break
        while self._idle:
            conn, returned = self._idle.pop()
            if conn.closed:
                self.open -= 1
                continue
            if ping_after is not None and now - returned >= ping_after:
                try:  # an empty query outside a transaction: one round trip, no plan
                    was = conn.autocommit
                    if not was:
                        await conn.set_autocommit(True)
                    await conn.execute("")
                    if not was:
                        await conn.set_autocommit(False)
                except psycopg.Error:
                    await self._drop(conn)
                    continue
            return conn
        conn = await DeadlineConnection.connect(self._conninfo, **self._kwargs)
        conn.response_timeout = self._settings.db_client_deadline
        self.open += 1
        return conn

    async def _drop(self, conn: Connection) -> None:
        self.open -= 1
        self._engines.pop(id(conn), None)  # its pool holds nothing else: nothing to dispose
        with contextlib.suppress(psycopg.Error):
            await conn.close()


class StatementPool(ReadPool):
    """asyncpg connections on the primary for single statements that commit by themselves.

    Who uses it: units of work whose writes are each one statement (`kit/uow.py`,
    `unit_of_work(..., autocommit=True, statements=pool)`: a worker's claim, heartbeat,
    phase, completion, failure and log lines). Their repositories' text SQL runs here
    (`kit/raw.py` converts the `%(name)s` placeholders to `$n` once per statement text)
    instead of on a psycopg connection of the driver pool. Why: with 8 concurrent
    workers, psycopg's async waits (the socket added to and removed from the event loop
    on every wait, a Python generator per wait) cost the work queue's cycle about 200 µs
    of client CPU of 740 (docs/benchmarks.md, "The work queue"); the rest of the platform
    keeps psycopg, whose transactions these statements never need.

    Errors are raised as psycopg's (`as_psycopg_error`), so everything above — a
    repository catching a foreign-key violation, the API's 503 for an unavailable
    database, the CLI — sees one driver's errors. The mechanics are `postgres.ReadPool`'s
    (a deque, first-come turns, connections in doubt dropped); waits are bounded by the
    engine's client deadline, or the task's shorter one (`postgres.bounded_waits`). No
    ping after idle, unlike the driver pool: asyncpg's idle connections stay watched by
    the event loop, so one the server ended (a restart) is seen closed and replaced
    before a statement meets it (tests/kit/test_statement_pool.py).
    """

    purpose = "statements"

    def __init__(self, settings: Settings, *, url: str, role: ProcessRole, size: int) -> None:
        super().__init__(settings, url=url, role=role, size=size)
        self._configure()  # open from the start: it connects on first use

    async def rows(self, query: str, args: Sequence[Any]) -> list[Any]:
        """Every row of `query` ($n placeholders)."""
        return await self._call(lambda conn, bound: conn.fetch(query, *args, timeout=bound))

    async def row(self, query: str, args: Sequence[Any]) -> Any:
        """The first row of `query`, or None."""
        return await self._call(lambda conn, bound: conn.fetchrow(query, *args, timeout=bound))

    async def execute(self, query: str, args: Sequence[Any]) -> int:
        """Run `query`; the number of rows it touched (from its command tag)."""
        tag = await self._call(lambda conn, bound: conn.execute(query, *args, timeout=bound))
        last = tag.rpartition(" ")[2]
        return int(last) if last.isdigit() else -1

    async def _call(self, call: Callable[[asyncpg.Connection, float | None], Awaitable[T]]) -> T:
        """`call` on a pool connection with the statement's bound: the task's shorter one
        (`postgres.bounded_waits`) where it is shorter, else None (the connection's
        command timeout, the client deadline)."""
        shorter = postgres.task_deadline()
        deadline = self._settings.db_client_deadline
        bound = (
            shorter if shorter is not None and (deadline is None or shorter < deadline) else None
        )
        try:
            return await self.run(lambda conn: call(conn, bound), self._settings.db_pool_timeout)
        except NoTurn as exc:
            raise DriverPoolTimeout(str(exc)) from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise as_psycopg_error(exc) from exc


def as_psycopg_error(exc: BaseException) -> Exception:
    """asyncpg's error as psycopg would have raised it: the server's by its SQLSTATE
    (`psycopg.errors.lookup`; a parameter asyncpg cannot encode comes as class 22, a
    DataError, as psycopg's "invalid input syntax" would), a timeout as
    `DatabaseNotAnswering`, a lost connection as an OperationalError without SQLSTATE
    (`postgres.is_connection_lost`)."""
    if isinstance(exc, asyncpg.PostgresError):
        try:
            error_class: type[psycopg.Error] = psycopg.errors.lookup(exc.sqlstate)
        except KeyError:
            error_class = psycopg.DatabaseError
        return error_class(str(exc))
    if isinstance(exc, TimeoutError):
        return DatabaseNotAnswering(f"PostgreSQL did not answer in time ({exc or 'timeout'})")
    return psycopg.OperationalError(f"the connection to PostgreSQL was lost: {exc}")

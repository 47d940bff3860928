"""The async SQLAlchemy engine on psycopg 3, how sessions are made from it, and the
small asyncpg pool of the API's hottest read."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import asyncpg
import orjson
import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, PoolProxiedConnection

from templator import private_apis
from templator.config import ProcessRole, Settings
from templator.exceptions import first_line

T = TypeVar("T")

_RETURNED_AT = "templator.returned_at"
# A shorter bound for the current task's waits on PostgreSQL (readiness answers within
# its own timeout, not the statements').
_deadline: ContextVar[float | None] = ContextVar("templator_db_deadline", default=None)


def describe_url(url: str) -> str:
    """host:port/database of a URL, without credentials, for messages."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "local socket"
    return f"{host}:{parsed.port or 5432}/{parsed.database or ''}"


def create_engine(settings: Settings, *, url: str, role: ProcessRole) -> AsyncEngine:
    """Build the pooled engine: pre-ping, recycle, short connect timeout, named connections,
    TCP keepalives and a client-side bound on every wait (`DeadlineConnection`)."""
    connect_args: dict[str, Any] = {
        "connect_timeout": settings.db_connect_timeout,
        "application_name": f"templator-{role.value}",
        **keepalive_params(settings),
        "async_creator_fn": DeadlineConnection.factory(settings.db_client_deadline),
    }
    if settings.db_pgbouncer:
        # Transaction pooling gives each transaction whichever server connection is free:
        # a statement psycopg prepared on one is unknown to the next, and PgBouncer refuses
        # the `options` startup parameter. So nothing is prepared server-side and the
        # timeout is set inside every transaction instead.
        connect_args["prepare_threshold"] = None
    else:
        connect_args["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
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
        connect_args=connect_args,
    )
    if idle_ping:
        ping_after_idle(engine.sync_engine, settings.db_pool_ping_after_idle)
    if settings.db_pgbouncer and settings.db_statement_timeout_ms > 0:
        timeout_per_transaction(engine.sync_engine, settings.db_statement_timeout_ms)
    return engine


def timeout_per_transaction(engine: Engine, milliseconds: int) -> None:
    """`SET LOCAL statement_timeout` at the start of every transaction.

    Behind a transaction pooler a session-level setting would stay on the server
    connection and leak to other clients, and a startup parameter never arrives; SET
    LOCAL lasts exactly as long as the transaction it belongs to.
    """
    statement = f"SET LOCAL statement_timeout = {int(milliseconds)}"

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(statement)


def keepalive_params(settings: Settings) -> dict[str, int]:
    """libpq's TCP keepalive and TCP_USER_TIMEOUT parameters: a peer that vanished (a
    crashed host, a cut network) is noticed in seconds instead of the kernel's hours."""
    params = {
        "keepalives": 1,
        "keepalives_idle": settings.db_tcp_keepalives_idle,
        "keepalives_interval": settings.db_tcp_keepalives_interval,
        "keepalives_count": settings.db_tcp_keepalives_count,
    }
    if settings.db_tcp_user_timeout_ms:
        params["tcp_user_timeout"] = settings.db_tcp_user_timeout_ms
    return params


class DatabaseNotAnswering(psycopg.OperationalError):
    """PostgreSQL accepted the connection but answered nothing within the bound."""


class DeadlineConnection(private_apis.BoundedWaitConnection):
    """A psycopg connection whose every wait on the server is bounded.

    A paused or hung server still has a kernel that acknowledges our packets, so neither
    keepalives nor TCP_USER_TIMEOUT notice it, and its statement_timeout never fires.
    Past the bound — this connection's `response_timeout`, or the task's shorter one
    (`bounded_waits`) — the connection is closed (its state is unknown) and
    `DatabaseNotAnswering` raised, which SQLAlchemy treats as a disconnect.
    """

    response_timeout: float | None = None

    @classmethod
    def factory(cls, response_timeout: float | None) -> Any:
        """A `connect` for SQLAlchemy's `async_creator_fn` giving each connection the bound."""

        async def connect(*args: Any, **kwargs: Any) -> DeadlineConnection:
            conn = await cls.connect(*args, **kwargs)
            conn.response_timeout = response_timeout
            return conn

        return connect

    def wait_bound(self) -> float | None:
        bound, shorter = self.response_timeout, _deadline.get()
        if shorter is not None and (bound is None or shorter < bound):
            return shorter
        return bound

    def timed_out(self, bound: float) -> Exception:
        return DatabaseNotAnswering(
            f"PostgreSQL did not answer within {bound:g}s; the connection was closed"
        )


def task_deadline() -> float | None:
    """The current task's shorter bound on its waits (`bounded_waits`), if any."""
    return _deadline.get()


@contextmanager
def bounded_waits(seconds: float) -> Iterator[None]:
    """Bound every wait on PostgreSQL in this task to `seconds` (e.g. a health probe)."""
    token = _deadline.set(seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def is_connection_lost(exc: BaseException) -> bool:
    """Narrower than `is_unavailable`: the server could not be reached or the connection
    broke, as opposed to a statement it refused (a timeout, a recovery conflict), which
    carries a SQLSTATE. A read that may go elsewhere (a replica's) retries only these."""
    if getattr(exc, "connection_invalidated", False):
        return True
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, psycopg.InterfaceError):
        return True
    return isinstance(orig, psycopg.OperationalError) and getattr(orig, "sqlstate", None) is None


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means PostgreSQL cannot serve now (down, refusing, restarting, hung,
    out of connections or resources) rather than a fault of the request or the code.

    psycopg raises OperationalError for SQLSTATE classes 08 (connection), 53 (resources),
    57 (operator intervention: shutdown, starting up, statement timeout) and 58 (system),
    and for every client-side connection failure; InterfaceError for a closed connection.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)


def describe_failure(exc: BaseException) -> str:
    """The first line of the driver's message, for a one-line log entry."""
    return first_line((exc.orig or exc) if isinstance(exc, DBAPIError) else exc)


def pool_stats(engine: AsyncEngine) -> dict[str, int]:
    """The engine pool's figures as numbers (SQLAlchemy's status() is a sentence)."""
    pool: Any = engine.pool
    size = int(pool.size()) if hasattr(pool, "size") else 0
    overflow = int(pool.overflow()) if hasattr(pool, "overflow") else 0
    checked_out = int(pool.checkedout()) if hasattr(pool, "checkedout") else 0
    metered = isinstance(pool, MeteredQueuePool)
    return {
        "size": size,
        "max_overflow": pool.max_overflow if metered else 0,
        "open": max(0, size + overflow),
        "checked_out": checked_out,
        "idle": int(pool.checkedin()) if hasattr(pool, "checkedin") else 0,
        "overflow": max(0, overflow),
        "waiting": pool.waiting if metered else 0,
    }


class MeteredQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, counting who waits for a connection and who gave
    up (monitoring/pools.py); SQLAlchemy itself only reports size and checked-out.

    Only public API: the pool's `max_overflow` argument kept, and `connect()` (every
    checkout, the engine's included) wrapped; whether a checkout must wait is read from
    `overflow()` and `checkedin()`.
    """

    waiting = 0
    timeouts = 0

    def __init__(
        self, creator: Any, pool_size: int = 5, max_overflow: int = 10, **kwargs: Any
    ) -> None:
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow, **kwargs)
        self.max_overflow = max_overflow

    def connect(self) -> PoolProxiedConnection:
        # Every connection the pool may open is out and none has come back: this
        # checkout waits in the queue (up to DB_POOL_TIMEOUT).
        blocked = self.max_overflow >= 0 and (
            self.overflow() >= self.max_overflow and self.checkedin() == 0
        )
        if blocked:
            self.waiting += 1
        try:
            return super().connect()
        except PoolTimeout:
            self.timeouts += 1
            raise
        finally:
            if blocked:
                self.waiting -= 1


class Turns:
    """First-come-first-served turns at a pool's connections (as many as it may open), with
    its waiters and the waits given up counted: a waiter is never overtaken by a newcomer,
    and a turn always finds a connection idle or room to make one. `ReadPool` and
    `driver_pool.DriverPool` take their turns here."""

    def __init__(self, size: int) -> None:
        self._turns = asyncio.Semaphore(size)
        self.waiting = 0
        self.timeouts = 0

    async def take(self, timeout: float) -> None:
        """A turn, at once or within `timeout` seconds; TimeoutError when none came."""
        if not self._turns.locked():
            await self._turns.acquire()  # returns at once
            return
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await self._turns.acquire()
        except TimeoutError:
            self.timeouts += 1
            raise
        finally:
            self.waiting -= 1

    def give_back(self) -> None:
        self._turns.release()

    def stats(self, size: int, open_: int, idle: int) -> dict[str, int]:
        """A deque pool's figures: connections allowed, open, in use and idle; callers
        waiting; waits given up (`size`/`checked_out`/`overflow` name the same figures as
        `pool_stats` of the engine's pool, for readiness)."""
        return {
            "max": size,
            "size": size,
            "max_overflow": 0,
            "open": open_,
            "in_use": open_ - idle,
            "checked_out": open_ - idle,
            "idle": idle,
            "overflow": 0,
            "waiting": self.waiting,
            "timeouts": self.timeouts,
        }


class ReadUnavailable(Exception):
    """The hot-read pool could not answer (no connection in time, a lost connection, a
    server error); the caller takes its ordinary path instead."""


class NoTurn(TimeoutError):
    """Every connection of a deque pool stayed busy for as long as the caller would wait."""


class ReadPool:
    """A small pool of asyncpg connections for the API's hottest read (api/fastpath.py).

    Why asyncpg: for one single-row SELECT its compiled protocol spends much less client
    CPU than psycopg's, and on a small host that CPU is most of what a read that cannot
    come from the cache costs (docs/benchmarks.md, "asyncpg or psycopg for the hot
    read"). This pool serves that one read and nothing else: every write, and every
    other read, goes through the SQLAlchemy engine.

    Why not asyncpg's own pool: its acquire and release (a proxy object, a release
    shielded in a task of its own) cost more CPU per read than the statement itself. The
    connections here sit in a deque; a first-come-first-served semaphore hands out turns
    (as many as connections), so a waiter is never overtaken by a newcomer and a turn
    always finds a connection idle or room to make one.

    Connections are made on demand (none at start-up, so a database that is down does
    not stop the API from starting; with Redis up, none at all), the most recently used
    first, and closed after `IDLE_LIFETIME` unused; they are named
    `templator-<role>-reads` in pg_stat_activity and run with the engine's statement
    timeout. asyncpg prepares each statement once per connection. Nothing is reset on
    release: the connections only run autocommit SELECTs. A connection that failed in a
    way that leaves it in doubt (lost, timed out, cancelled) is dropped, never reused.
    """

    IDLE_LIFETIME = 300.0
    purpose = "reads"
    """Its connections' application_name is `templator-<role>-<purpose>`."""

    def __init__(
        self, settings: Settings, *, url: str, role: ProcessRole, size: int | None = None
    ) -> None:
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._settings = settings
        self._role = role
        self._connect_options: dict[str, Any] | None = None
        self._idle: deque[tuple[asyncpg.Connection, float]] = deque()
        self._open = 0
        self.size = settings.db_read_pool_size if size is None else size
        self.turns = Turns(self.size)

    async def open(self) -> None:
        """Ready the pool (it connects on first use)."""
        self._configure()

    def _configure(self) -> None:
        settings = self._settings
        server_settings = {"application_name": f"templator-{self._role.value}-{self.purpose}"}
        options: dict[str, Any] = {}
        # A client-side bound per statement: a hung server answers nothing.
        command_timeout = settings.db_client_deadline
        if settings.db_pgbouncer:
            # Behind a transaction pooler: no named prepared statements (asyncpg's cache
            # off) and no startup parameter for the timeout; the client cancels instead.
            options["statement_cache_size"] = 0
            if settings.db_statement_timeout_ms:
                command_timeout = settings.db_statement_timeout_ms / 1000
        else:
            server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
        self._connect_options = {
            "timeout": settings.db_connect_timeout,
            "command_timeout": command_timeout,
            "server_settings": server_settings,
            **options,
        }

    async def close(self) -> None:
        """Close the idle connections; those in use close when their read ends."""
        self._connect_options = None
        while self._idle:
            conn, _ = self._idle.pop()
            self._open -= 1
            await _close_quietly(conn)

    def stats(self) -> dict[str, int]:
        """Connections allowed, open, in use and idle; callers waiting; waits given up.
        (`size`/`checked_out`/`overflow` name the same figures as `pool_stats` of the
        engine's pool, for readiness.)"""
        return self.turns.stats(self.size, self._open, len(self._idle))

    async def fetchrow(self, query: str, *args: Any) -> Sequence[Any] | None:
        """The first row of `query` ($1, $2… placeholders), or None; ReadUnavailable
        when the pool cannot answer within DB_CONNECT_TIMEOUT or the statement fails."""
        try:
            row: Sequence[Any] | None = await self.run(
                lambda conn: conn.fetchrow(query, *args), self._settings.db_connect_timeout
            )
        except NoTurn as exc:
            raise ReadUnavailable("no read connection free in time") from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise ReadUnavailable(str(exc) or type(exc).__name__) from exc
        return row

    async def run(self, call: Callable[[asyncpg.Connection], Awaitable[T]], wait: float) -> T:
        """`call` on a connection of the pool, with asyncpg's errors as they are; NoTurn
        when no connection came free within `wait` seconds."""
        if self._connect_options is None:
            raise asyncpg.InterfaceError(f"the {self.purpose} pool is not open")
        try:  # every connection busy: wait in line, not for ever
            await self.turns.take(wait)
        except TimeoutError as exc:
            raise NoTurn(f"no {self.purpose} connection free within {wait:g}s") from exc
        try:
            conn = await self._take()
            try:
                result = await call(conn)
            except asyncpg.PostgresError:  # the server refused the statement: conn is fine
                self._give_back(conn)
                raise
            except BaseException:  # lost, timed out or cancelled: in doubt, never reused
                self._open -= 1
                conn.terminate()
                raise
            self._give_back(conn)
            return result
        finally:
            self.turns.give_back()

    async def _take(self) -> asyncpg.Connection:
        """An idle connection (the most recently used), else a new one; connections idle
        longer than IDLE_LIFETIME are closed on the way."""
        now = time.monotonic()
        while self._idle and now - self._idle[0][1] > self.IDLE_LIFETIME:
            stale, _ = self._idle.popleft()
            self._open -= 1
            stale.terminate()
        while self._idle:
            conn, _ = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._open -= 1  # the server closed it while idle
        assert self._connect_options is not None
        conn = await asyncpg.connect(self._conninfo, **self._connect_options)
        self._open += 1
        try:
            await self._init_connection(conn)
        except BaseException:
            self._open -= 1
            conn.terminate()
            raise
        return conn

    def _give_back(self, conn: asyncpg.Connection) -> None:
        if self._connect_options is None or conn.is_closed():  # closing, or lost
            self._open -= 1
            conn.terminate()
        else:
            self._idle.append((conn, time.monotonic()))

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        """orjson for JSON columns; TCP keepalives, which asyncpg has no parameter for."""
        await _init_read_connection(conn)
        sock = private_apis.asyncpg_socket(conn)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            _set_keepalive(sock, self._settings)


async def _close_quietly(conn: asyncpg.Connection) -> None:
    """Close `conn` politely, or drop it if the server does not answer in time."""
    try:
        await conn.close(timeout=1)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        conn.terminate()


def _set_keepalive(sock: socket.socket, settings: Settings) -> None:
    """The socket options libpq sets from keepalive_params()."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, settings.db_tcp_keepalives_idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, settings.db_tcp_keepalives_interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, settings.db_tcp_keepalives_count)
    if settings.db_tcp_user_timeout_ms:
        sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, settings.db_tcp_user_timeout_ms
        )


async def _init_read_connection(conn: Any) -> None:
    """JSON columns parsed by orjson, as the rest of the code base does; a JSON parameter
    given as a str is JSON text already, as psycopg sends it (the statement pool's
    repositories pass `::jsonb` parameters that way)."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=_json_text, decoder=orjson.loads, schema="pg_catalog"
        )


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


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

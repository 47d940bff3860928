"""The async SQLAlchemy engine on psycopg 3, and how sessions are made from it."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

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

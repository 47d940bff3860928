"""The engine's disconnect handling: connections that died while idle are replaced unseen."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import psycopg
import pytest
from sqlalchemy import text

from templator import private_apis
from templator.config import ProcessRole, Settings
from templator.dev.localstack.process import free_port
from templator.postgres import ReadPool, ReadUnavailable, create_engine
from tests.support import servers


def _settings(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, **overrides})


async def _backend_pid(engine: object) -> int:
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        pid: int = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return pid


def _terminate(pid: int) -> None:
    with psycopg.connect(servers.ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_a_connection_killed_while_idle_is_replaced_before_use(settings: Settings) -> None:
    assert settings.database_url
    conf = _settings(settings, db_pool_ping_after_idle=0.2)
    engine = create_engine(conf, url=settings.database_url, role=ProcessRole.TEST)
    try:
        first = await _backend_pid(engine)
        _terminate(first)
        await asyncio.sleep(0.3)  # idle longer than the threshold: the checkout pings
        second = await _backend_pid(engine)
        assert second != first
    finally:
        await engine.dispose()


async def test_only_idle_connections_are_pinged(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Returned moments ago: no SELECT 1 before the next use (the round trip it saves)."""
    assert settings.database_url
    conf = _settings(settings, db_pool_ping_after_idle=0.2)
    engine = create_engine(conf, url=settings.database_url, role=ProcessRole.TEST)
    dialect = engine.sync_engine.dialect
    pings: list[object] = []
    real_ping = dialect.do_ping

    def counting_ping(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)  # type: ignore[arg-type]

    monkeypatch.setattr(dialect, "do_ping", counting_ping)
    try:
        pids = {await _backend_pid(engine) for _ in range(5)}
        assert len(pids) == 1 and pings == []
        await asyncio.sleep(0.3)
        assert await _backend_pid(engine) in pids
        assert len(pings) == 1
    finally:
        await engine.dispose()


async def test_every_checkout_pinged_with_threshold_zero(settings: Settings) -> None:
    """DB_POOL_PING_AFTER_IDLE=0 keeps SQLAlchemy's own pre-ping: a killed connection is
    replaced even when it was returned a moment ago."""
    assert settings.database_url
    conf = _settings(settings, db_pool_ping_after_idle=0)
    engine = create_engine(conf, url=settings.database_url, role=ProcessRole.TEST)
    try:
        assert engine.sync_engine.pool._pre_ping  # type: ignore[attr-defined]
        first = await _backend_pid(engine)
        _terminate(first)
        await asyncio.sleep(0.05)
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()


# --- the hot-read pool (asyncpg) -------------------------------------------------------


async def test_the_read_pool_answers_a_row_and_none_for_no_row(settings: Settings) -> None:
    assert settings.database_url
    pool = ReadPool(settings, url=settings.database_url, role=ProcessRole.TEST)
    await pool.open()
    try:
        row = await pool.fetchrow(
            "SELECT $1::text, '{\"a\": [1, 2]}'::jsonb, current_setting('application_name')",
            "x",
        )
        assert row is not None
        assert tuple(row) == ("x", {"a": [1, 2]}, "templator-test-reads")
        assert await pool.fetchrow("SELECT 1 WHERE false") is None
    finally:
        await pool.close()


async def test_the_read_pool_runs_with_the_engines_statement_timeout(settings: Settings) -> None:
    assert settings.database_url
    conf = settings.model_copy(update={"db_statement_timeout_ms": 100})
    pool = ReadPool(conf, url=settings.database_url, role=ProcessRole.TEST)
    await pool.open()
    try:
        with pytest.raises(ReadUnavailable, match="statement timeout"):
            await pool.fetchrow("SELECT pg_sleep(2)")
        assert await pool.fetchrow("SELECT 1") is not None  # the connection is usable again
    finally:
        await pool.close()


async def test_a_read_pool_connection_killed_fails_one_read_and_is_replaced(
    settings: Settings,
) -> None:
    assert settings.database_url
    pool = ReadPool(
        settings.model_copy(update={"db_read_pool_size": 1}),
        url=settings.database_url,
        role=ProcessRole.TEST,
    )
    await pool.open()
    try:
        first = await pool.fetchrow("SELECT pg_backend_pid()")
        assert first is not None
        _terminate(first[0])
        await asyncio.sleep(0.1)
        # Either the pool noticed the closed socket and reconnected, or this one read
        # fails as unavailable (the caller's ordinary path serves it); never anything else.
        with contextlib.suppress(ReadUnavailable):
            await pool.fetchrow("SELECT 1")
        second = await pool.fetchrow("SELECT pg_backend_pid()")
        assert second is not None and second[0] != first[0]
    finally:
        await pool.close()


async def test_an_unreachable_server_is_read_unavailable_and_the_pool_opens_anyway(
    settings: Settings,
) -> None:
    """The pool connects on first use: a database that is down does not stop start-up."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    pool = ReadPool(settings, url=url, role=ProcessRole.TEST)
    await pool.open()
    try:
        with pytest.raises(ReadUnavailable, match=r"(?i)connect|refused"):
            await pool.fetchrow("SELECT 1")
    finally:
        await pool.close()


async def test_a_read_waits_its_turn_at_most_the_connect_timeout(settings: Settings) -> None:
    """One connection, held by a slow read: the next read gives up after
    DB_CONNECT_TIMEOUT instead of queueing behind it for ever."""
    assert settings.database_url
    conf = settings.model_copy(update={"db_read_pool_size": 1, "db_connect_timeout": 1})
    pool = ReadPool(conf, url=settings.database_url, role=ProcessRole.TEST)
    await pool.open()
    try:
        slow = asyncio.create_task(pool.fetchrow("SELECT pg_sleep(2)"))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(ReadUnavailable, match="no read connection free in time"):
            await pool.fetchrow("SELECT 1")
        assert 0.9 < time.monotonic() - started < 1.75
        await slow
        assert await pool.fetchrow("SELECT 1") is not None
    finally:
        await pool.close()


def _socket_options(sock: socket.socket) -> tuple[int, int, int]:
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
    )


async def test_engine_and_read_pool_connections_carry_keepalives_and_a_user_timeout(
    settings: Settings,
) -> None:
    """A peer that vanishes is noticed in seconds by TCP, on both drivers' connections."""
    assert settings.database_url
    conf = _settings(settings, db_tcp_keepalives_idle=7, db_tcp_user_timeout_ms=4321)
    engine = create_engine(conf, url=settings.database_url, role=ProcessRole.TEST)
    pool = ReadPool(conf, url=settings.database_url, role=ProcessRole.TEST)
    await pool.open()
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            fd = raw.driver_connection.pgconn.socket  # type: ignore[union-attr]
            with socket.socket(fileno=os.dup(fd)) as sock:
                assert _socket_options(sock) == (1, 7, 4321)
        assert await pool.fetchrow("SELECT 1") is not None
        conn, _ = pool._idle[-1]  # the connection that answered, idle again
        sock = private_apis.asyncpg_socket(conn)
        assert sock is not None
        assert _socket_options(sock) == (1, 7, 4321)
    finally:
        await pool.close()
        await engine.dispose()


async def test_a_read_cancelled_mid_statement_drops_its_connection(settings: Settings) -> None:
    """A cancelled read leaves its connection in doubt: it is closed, never handed out
    again, and the next read gets a connection of its own."""
    assert settings.database_url
    conf = settings.model_copy(update={"db_read_pool_size": 1})
    pool = ReadPool(conf, url=settings.database_url, role=ProcessRole.TEST)
    await pool.open()
    try:
        first = await pool.fetchrow("SELECT pg_backend_pid()")
        assert first is not None and pool.stats()["open"] == 1
        slow = asyncio.create_task(pool.fetchrow("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.3)
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow
        assert pool.stats()["open"] == 0
        second = await pool.fetchrow("SELECT pg_backend_pid()")
        assert second is not None and second[0] != first[0]
        assert pool.stats() | {"open": 1, "idle": 1, "in_use": 0} == pool.stats()
    finally:
        await pool.close()
    assert pool.stats()["open"] == 0


async def test_a_connection_idle_past_its_lifetime_is_replaced(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.database_url
    pool = ReadPool(settings, url=settings.database_url, role=ProcessRole.TEST)
    await pool.open()
    try:
        first = await pool.fetchrow("SELECT pg_backend_pid()")
        monkeypatch.setattr(ReadPool, "IDLE_LIFETIME", 0.0)
        await asyncio.sleep(0.05)
        second = await pool.fetchrow("SELECT pg_backend_pid()")
        assert first is not None and second is not None and second[0] != first[0]
        assert pool.stats()["open"] == 1
    finally:
        await pool.close()

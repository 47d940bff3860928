"""The engine's disconnect handling: connections that died while idle are replaced unseen."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import text

from templator.config import ProcessRole, Settings
from templator.postgres import create_engine
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

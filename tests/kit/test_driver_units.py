"""Units of work on the driver pool (kit/uow.py, kit/raw.py, driver_pool.py) on a real
PostgreSQL: one transaction whatever mix of raw and SQLAlchemy statements runs in it,
commit and rollback of both together, autocommit units, a lost connection replaced,
failures that fail fast."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import text

from templator.config import ProcessRole, Settings
from templator.connections import Connections
from templator.driver_pool import DriverPool, DriverPoolTimeout
from templator.kit.ids import new_id
from templator.kit.raw import driver_connection
from templator.kit.uow import unit_of_work


async def _raw(session: object, statement: str, *params: object) -> object:
    raw = await driver_connection(session)  # type: ignore[arg-type]
    cursor = await raw.execute(statement, params or None)
    if cursor.description is None:  # no rows to read (an INSERT)
        return None
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def _count(conns: Connections, email: str) -> int:
    async with conns.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM users WHERE email = :e"), {"e": email}
        )
        return int(found.scalar_one())


async def test_a_raw_unit_commits_on_the_driver_pool_and_never_begins_sqlalchemy(
    conns: Connections,
) -> None:
    email = f"{new_id()}@driver.example"
    assert conns.driver_pool is not None
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=conns.driver_pool) as s:
        await _raw(s, "INSERT INTO users (id, email) VALUES (%s, %s)", new_id(), email)
        assert not s.in_transaction()  # SQLAlchemy's session never began
        assert conns.driver_pool.stats()["checked_out"] == 1
    assert await _count(conns, email) == 1
    assert conns.driver_pool.stats()["checked_out"] == 0
    assert conns.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_sqlalchemy_after_a_raw_statement_joins_its_transaction(conns: Connections) -> None:
    """Raw, then Core on the same unit: one backend, one transaction id, committed together
    and rolled back together."""
    kept, lost = f"{new_id()}@driver.example", f"{new_id()}@driver.example"
    assert conns.driver_pool is not None
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=conns.driver_pool) as s:
        raw_xid = await _raw(s, "SELECT txid_current()")
        await _raw(s, "INSERT INTO users (id, email) VALUES (%s, %s)", new_id(), kept)
        core_xid = (await s.execute(text("SELECT txid_current()"))).scalar_one()
        await s.execute(text("UPDATE users SET name = 'via core' WHERE email = :e"), {"e": kept})
    assert raw_xid == core_xid
    async with conns.engine.connect() as conn:
        name = await conn.execute(text("SELECT name FROM users WHERE email = :e"), {"e": kept})
        assert name.scalar_one() == "via core"

    with pytest.raises(RuntimeError, match="boom"):
        async with unit_of_work(conns.sessionmaker, conns.cache, driver=conns.driver_pool) as s:
            await _raw(s, "INSERT INTO users (id, email) VALUES (%s, %s)", new_id(), lost)
            await s.execute(text("UPDATE users SET name = 'x' WHERE email = :e"), {"e": lost})
            raise RuntimeError("boom")
    assert await _count(conns, lost) == 0
    assert conns.driver_pool.stats()["checked_out"] == 0


async def test_sqlalchemy_first_runs_the_unit_on_the_engine(conns: Connections) -> None:
    assert conns.driver_pool is not None
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=conns.driver_pool) as s:
        core_xid = (await s.execute(text("SELECT txid_current()"))).scalar_one()
        assert await _raw(s, "SELECT txid_current()") == core_xid
        assert conns.driver_pool.stats()["open"] == 0  # nothing taken from the driver pool


async def test_an_autocommit_unit_commits_each_statement_sqlalchemy_included(
    conns: Connections,
) -> None:
    email, core = f"{new_id()}@driver.example", f"{new_id()}@driver.example"
    pool = conns.driver_pool
    assert pool is not None
    with pytest.raises(RuntimeError, match="boom"):
        async with unit_of_work(conns.sessionmaker, conns.cache, driver=pool, autocommit=True) as s:
            await _raw(s, "INSERT INTO users (id, email) VALUES (%s, %s)", new_id(), email)
            first = await _raw(s, "SELECT pg_backend_pid()")
            # SQLAlchemy runs on the same connection, each statement committed by itself.
            assert (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one() == first
            await s.execute(
                text("INSERT INTO users (id, email) VALUES (:i, :e)"), {"i": new_id(), "e": core}
            )
            raise RuntimeError("boom")
    assert await _count(conns, email) == 1  # committed by itself, before the failure
    assert await _count(conns, core) == 1
    # The connection is taken in transaction mode by the next transactional unit.
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=pool) as s:
        xid = await _raw(s, "SELECT txid_current()")
        assert await _raw(s, "SELECT txid_current()") == xid


async def test_a_connection_lost_while_idle_is_replaced(conns: Connections) -> None:
    pool = conns.driver_pool
    assert pool is not None
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=pool) as s:
        pid = await _raw(s, "SELECT pg_backend_pid()")
    async with conns.engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        await conn.commit()
    await asyncio.sleep(0.1)
    # Idle less than DB_POOL_PING_AFTER_IDLE: not pinged; its first statement fails and
    # the connection is dropped (the API answers 503 and the client retries)...
    with pytest.raises(psycopg.OperationalError):
        async with unit_of_work(conns.sessionmaker, conns.cache, driver=pool) as s:
            await _raw(s, "SELECT 1")
    assert pool.stats()["open"] == 0
    # ...and the next unit gets a new one.
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=pool) as s:
        assert await _raw(s, "SELECT pg_backend_pid()") != pid


async def test_an_exhausted_pool_answers_busy_within_its_timeout(conns: Connections) -> None:
    pool = conns.driver_pool
    assert pool is not None
    held = [await pool.take(), await pool.take()]
    try:
        with pytest.raises(DriverPoolTimeout):
            await asyncio.wait_for(pool.take(), timeout=5)
        assert pool.stats()["timeouts"] == 1
    finally:
        for conn in held:
            await pool.give_back(conn)


async def test_a_server_that_is_down_fails_at_once_not_after_the_pool_timeout(
    settings: Settings,
) -> None:
    conf = settings.model_copy(update={"db_pool_timeout": 30.0, "db_connect_timeout": 2})
    pool = DriverPool(conf, url="postgresql://postgres@127.0.0.1:1/none", role=ProcessRole.TEST)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(psycopg.OperationalError):
        await pool.take()
    assert loop.time() - started < 5
    assert pool.stats()["checked_out"] == 0
    with pytest.raises(psycopg.OperationalError):  # the turn was given back
        await pool.take()


async def test_the_driver_pool_is_reported_with_the_other_pools(conns: Connections) -> None:
    from templator.monitoring.pools import pool_stats

    pool = conns.driver_pool
    assert pool is not None
    held = await pool.take()
    try:
        driver = pool_stats(conns)["driver"]
        assert (driver["max"], driver["open"], driver["in_use"], driver["idle"]) == (2, 1, 1, 0)
    finally:
        await pool.give_back(held)
    assert pool_stats(conns)["driver"]["idle"] == 1

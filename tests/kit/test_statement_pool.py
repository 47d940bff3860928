"""Autocommit units' statements on the asyncpg statement pool (driver_pool.StatementPool,
kit/raw.py, kit/repository.py) on a real PostgreSQL: where they run, what psycopg-style
statements and parameters become, and every failure raised as psycopg's own."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import text

from templator import postgres
from templator.api.deps import api_unit
from templator.config import ProcessRole, Settings
from templator.connections import Connections
from templator.dev.localstack.process import free_port
from templator.driver_pool import DriverPoolTimeout, StatementPool
from templator.kit.ids import new_id
from templator.kit.raw import dollar_params
from templator.kit.repository import Repository


def _unit(conns: Connections, *, autocommit: bool = True) -> Any:
    return api_unit(conns, autocommit=autocommit)  # as the API makes them


_WHO = (
    "SELECT application_name, pg_backend_pid() FROM pg_stat_activity WHERE pid = pg_backend_pid()"
)


async def test_an_autocommit_units_statements_run_on_the_statement_pool(
    conns: Connections,
) -> None:
    email = f"{new_id()}@statements.example"
    assert conns.driver_pool is not None and conns.statement_pool is not None
    async with _unit(conns) as s:
        repo = Repository(s)
        name, _ = await repo.fetch_one(_WHO, {})  # type: ignore[misc]
        touched = await repo.run(
            "INSERT INTO users (id, email) VALUES (%(id)s, %(email)s)",
            {"id": new_id(), "email": email},
        )
        rows = await repo.fetch_all("SELECT email FROM users WHERE email = %s", (email,))
        assert not s.in_transaction()  # SQLAlchemy never began
        assert conns.driver_pool.stats()["open"] == 0  # no psycopg connection was taken
    assert name == "templator-test-statements"
    assert touched == 1 and rows == [(email,)]
    assert conns.statement_pool.stats()["checked_out"] == 0  # each statement gave it back


async def test_a_transaction_unit_and_a_unit_sqlalchemy_began_keep_their_transaction(
    conns: Connections,
) -> None:
    """Not autocommit: the driver pool, as before. Autocommit but SQLAlchemy began first:
    the raw statement joins SQLAlchemy's transaction (its locks, its snapshot)."""
    async with _unit(conns, autocommit=False) as s:
        name, _ = await Repository(s).fetch_one(_WHO, {})  # type: ignore[misc]
    assert name == "templator-test"
    async with _unit(conns) as s:
        core_xid = (await s.execute(text("SELECT txid_current()"))).scalar_one()
        raw_xid = await Repository(s).fetch_one("SELECT txid_current()", {})
    assert raw_xid == (core_xid,)


async def test_placeholders_and_parameters_become_asyncpgs(conns: Connections) -> None:
    statement = (
        "SELECT %(a)s::text, %(b)s::int, %(a)s::text, 'x%%y', format('%%s!', %(a)s::text), "
        "%(doc)s::jsonb, %(raw)s::jsonb, %(none)s::text"
    )
    params = {
        "a": "é",
        "b": 7,
        "doc": Jsonb({"k": [1, "two", None]}),
        "raw": '{"t": true}',
        "none": None,
    }
    query, args = dollar_params(statement, params)
    assert query == (
        "SELECT $1::text, $2::int, $1::text, 'x%y', format('%s!', $1::text), $3::jsonb, "
        "$4::jsonb, $5::text"
    )
    assert args == ["é", 7, '{"k":[1,"two",null]}', '{"t": true}', None]
    assert dollar_params("SELECT %s, %s", ("p", 2)) == ("SELECT $1, $2", ["p", 2])
    async with _unit(conns) as s:
        row = await Repository(s).fetch_one(statement, params)
    assert row == ("é", 7, "é", "x%y", "é!", {"k": [1, "two", None]}, {"t": True}, None)


async def test_server_errors_are_psycopgs_and_a_bad_parameter_is_not_an_outage(
    conns: Connections,
) -> None:
    email = f"{new_id()}@statements.example"
    insert = "INSERT INTO users (id, email) VALUES (%(id)s, %(email)s)"
    async with _unit(conns) as s:
        await Repository(s).run(insert, {"id": new_id(), "email": email})
    with pytest.raises(psycopg.errors.UniqueViolation, match="duplicate key"):
        async with _unit(conns) as s:
            await Repository(s).run(insert, {"id": new_id(), "email": email})
    # A value the parameter's type cannot take: a DataError, as psycopg's server-side
    # "invalid input syntax" would be, never an outage.
    with pytest.raises(psycopg.DataError, match="invalid input") as bad:
        async with _unit(conns) as s:
            await Repository(s).fetch_one("SELECT %(n)s::int", {"n": "seven"})
    assert not postgres.is_unavailable(bad.value)
    async with _unit(conns) as s:  # and the pool still works
        assert await Repository(s).fetch_one("SELECT 1", {}) == (1,)


async def test_a_database_that_is_down_is_an_operational_error_at_once(settings: Settings) -> None:
    pool = StatementPool(
        settings,
        url=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
        role=ProcessRole.TEST,
        size=1,
    )
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError) as down:
        await pool.row("SELECT 1", [])
    assert postgres.is_unavailable(down.value) and postgres.is_connection_lost(down.value)
    assert time.monotonic() - started < settings.db_connect_timeout + 1
    assert pool.stats()["open"] == 0
    await pool.close()


async def test_a_busy_pool_answers_busy_and_a_hung_statement_is_bounded(
    conns: Connections,
) -> None:
    pool = conns.statement_pool
    assert pool is not None
    sleepers = [asyncio.create_task(pool.row("SELECT pg_sleep(1.5)", [])) for _ in range(2)]
    await asyncio.sleep(0.3)
    with pytest.raises(DriverPoolTimeout):  # the API's 503 `busy`
        await pool.row("SELECT 1", [])
    await asyncio.gather(*sleepers)
    opened = pool.stats()["open"]
    with postgres.bounded_waits(0.3), pytest.raises(postgres.DatabaseNotAnswering):
        await pool.row("SELECT pg_sleep(5)", [])
    assert pool.stats()["open"] == opened - 1  # the connection in doubt was dropped
    assert await pool.row("SELECT 2", []) is not None


async def test_a_connection_killed_while_idle_costs_no_statement(conns: Connections) -> None:
    """The server ends an idle connection (a restart, an administrator): asyncpg sees the
    socket close while it idles, and the next statement gets a new connection instead of
    an error (the driver pool needs its ping after idle for this; asyncpg watches)."""
    pool = conns.statement_pool
    assert pool is not None
    first = await pool.row("SELECT pg_backend_pid()", [])
    async with conns.engine.connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first[0]})
    await asyncio.sleep(0.2)
    async with _unit(conns) as s:
        again = await Repository(s).fetch_one("SELECT pg_backend_pid()", {})
    assert again is not None and again[0] != first[0]
    assert pool.stats()["open"] == 1

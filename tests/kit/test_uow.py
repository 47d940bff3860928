"""Units of work and read sessions on a real PostgreSQL: what they hand out and close."""

from __future__ import annotations

from templator.connections import Connections
from templator.kit.raw import driver_connection
from templator.kit.uow import read_session, unit_of_work


async def _backend_xid(connections: Connections, *, statements: int) -> set[object]:
    """The transaction ids seen by `statements` statements of one unit of work."""
    seen: set[object] = set()
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        for _ in range(statements):
            raw = await driver_connection(session)
            cursor = await raw.execute("SELECT txid_current()")
            row = await cursor.fetchone()
            assert row is not None
            seen.add(row[0])
    return seen


async def test_statements_of_one_unit_of_work_share_its_transaction(
    connections: Connections,
) -> None:
    assert len(await _backend_xid(connections, statements=3)) == 1


async def test_each_unit_of_work_gets_a_transaction_of_its_own(connections: Connections) -> None:
    first = await _backend_xid(connections, statements=2)
    second = await _backend_xid(connections, statements=2)
    assert first.isdisjoint(second)


async def test_the_driver_connection_of_a_session_follows_its_next_transaction(
    connections: Connections,
) -> None:
    async with connections.sessionmaker() as session:
        raw = await driver_connection(session)
        await raw.execute("SELECT 1")
        await session.commit()
        again = await driver_connection(session)  # a new transaction, maybe a new connection
        cursor = await again.execute("SELECT txid_current()")
        assert await cursor.fetchone() is not None
        assert session.in_transaction()


async def test_a_unit_of_work_gives_its_connection_back(connections: Connections) -> None:
    before = connections.engine.pool.checkedout()  # type: ignore[attr-defined]
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        await (await driver_connection(session)).execute("SELECT 1")
        assert connections.engine.pool.checkedout() == before + 1  # type: ignore[attr-defined]
    assert connections.engine.pool.checkedout() == before  # type: ignore[attr-defined]


async def test_a_read_session_that_ran_nothing_holds_no_connection(
    connections: Connections,
) -> None:
    before = connections.engine.pool.checkedout()  # type: ignore[attr-defined]
    async with read_session(connections.read_sessionmaker) as session:
        assert not session.in_transaction()
    async with read_session(connections.read_sessionmaker) as session:
        await (await driver_connection(session)).execute("SELECT 1")
    assert connections.engine.pool.checkedout() == before  # type: ignore[attr-defined]

"""The psycopg connection of a unit of work, for hot paths.

Hot single-row statements go straight to psycopg on the session's own connection: the
same transaction, none of the per-call Core compilation and result machinery. psycopg
prepares a statement after it has run a few times on a connection, so repeated calls
also skip parsing and planning on the server.

Finding that connection costs one hop into SQLAlchemy's greenlet (`run_sync`, which
also begins the transaction); it is then remembered on the session for as long as the
transaction lasts, so the transaction's next statements cost no hop at all.

A unit of work made on the driver pool (`kit/uow.py`, `driver_pool.py`) costs not even
that: its first raw statement takes a connection of that pool, which the unit commits
itself, and SQLAlchemy never begins. Such a unit runs SQLAlchemy too when SQLAlchemy is
used first (the raw statements then go to the session's connection, as above); used
after a raw statement, SQLAlchemy runs on the unit's connection (the session is bound to
an engine of that one connection: `DriverPool.engine_for`), in the same transaction
(in an autocommit unit, each of its statements commits by itself, as the raw ones do).
A begin on any other connection would be a second transaction, and is refused
(`MixedUnitOfWork`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import orjson
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_DRIVER = "templator.driver_connection"
_UNIT = "templator.driver_unit"


class ConnectionSource(Protocol):
    """Where a driver unit of work takes its connection (`driver_pool.DriverPool`)."""

    async def take(self, *, autocommit: bool = False) -> psycopg.AsyncConnection[Any]: ...

    async def give_back(self, conn: psycopg.AsyncConnection[Any]) -> None: ...

    async def discard(self, conn: psycopg.AsyncConnection[Any]) -> None: ...

    async def engine_for(self, conn: psycopg.AsyncConnection[Any]) -> AsyncEngine: ...


class StatementSource(Protocol):
    """Where an autocommit unit's statements run (`driver_pool.StatementPool`, asyncpg:
    `$n` placeholders, psycopg's errors)."""

    async def rows(self, query: str, args: Sequence[Any]) -> list[Any]: ...
    async def row(self, query: str, args: Sequence[Any]) -> Any: ...
    async def execute(self, query: str, args: Sequence[Any]) -> int: ...


@dataclass(slots=True)
class DriverUnit:
    """A unit of work's own driver connection, taken at its first raw statement."""

    source: ConnectionSource
    autocommit: bool = False
    """Each statement commits by itself: for units whose write is one statement."""
    conn: psycopg.AsyncConnection[Any] | None = None
    statements: StatementSource | None = None
    """An autocommit unit's text statements run here, one pool connection each."""


class MixedUnitOfWork(RuntimeError):
    """SQLAlchemy was used after a raw statement in a unit of work on the driver pool."""


def bind_driver_unit(
    session: AsyncSession,
    source: ConnectionSource,
    *,
    autocommit: bool = False,
    statements: StatementSource | None = None,
) -> DriverUnit:
    """Make `session`'s raw statements take a connection of `source` (`kit/uow.py`), or,
    in an autocommit unit with `statements`, run on that pool."""
    unit = DriverUnit(source, autocommit, statements=statements if autocommit else None)
    session.info[_UNIT] = unit
    return unit


def statement_source(session: AsyncSession) -> StatementSource | None:
    """Where `session`'s next text statement runs when not on a psycopg connection: the
    unit's statement pool, in an autocommit unit whose session SQLAlchemy has not begun
    (a transaction it began holds its locks and its snapshot: the statements join it)."""
    unit: DriverUnit | None = session.info.get(_UNIT)
    if unit is None or unit.statements is None or session.sync_session.in_transaction():
        return None
    return unit.statements


_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s|%s")


@functools.lru_cache(maxsize=1024)
def _dollar(statement: str) -> tuple[str, tuple[str | int, ...]]:
    names: list[str | int] = []

    def number(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "%%":
            return "%"
        key: str | int = match.group(1) if match.group(1) is not None else len(names)
        if isinstance(key, str) and key in names:
            return f"${names.index(key) + 1}"
        names.append(key)
        return f"${len(names)}"

    return _PLACEHOLDER.sub(number, statement), tuple(names)


def dollar_params(
    statement: str, params: Mapping[str, Any] | Sequence[Any]
) -> tuple[str, list[Any]]:
    """A psycopg statement (`%(name)s`, `%s`, `%%`) and its parameters as asyncpg takes
    them (`$n` and a list), the conversion cached per statement text. `Jsonb` values go
    as JSON text, as psycopg sends them."""
    query, names = _dollar(statement)
    values = [params[name] for name in names]  # type: ignore[index]
    for at, value in enumerate(values):
        if isinstance(value, Jsonb):
            text = (value.dumps or orjson.dumps)(value.obj)
            values[at] = text.decode() if isinstance(text, bytes) else text
    return query, values


def refuse_mixed_use(session: Session, transaction: Any, connection: Any) -> None:
    """SQLAlchemy's `after_begin` hook: refuse a transaction on another connection than
    the driver unit's (its statements would not commit together with the unit's)."""
    unit: DriverUnit | None = session.info.get(_UNIT)
    if (
        unit is not None
        and unit.conn is not None
        and connection.connection.driver_connection is not unit.conn
    ):
        raise MixedUnitOfWork(
            "SQLAlchemy began on another connection than its unit of work's driver "
            "connection (a session bound elsewhere after the first raw statement)"
        )


def _begin(session: Session) -> tuple[SessionTransaction | None, Any]:
    """(the session's transaction, its psycopg connection), beginning it if needed."""
    driver = session.connection().connection.driver_connection
    return session.get_transaction(), driver


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg AsyncConnection the session is using (begun if it was not)."""
    unit: DriverUnit | None = session.info.get(_UNIT)
    if unit is not None:
        if unit.conn is not None:
            return unit.conn
        if not session.sync_session.in_transaction():  # SQLAlchemy has not begun
            # Autocommit: no BEGIN, no COMMIT, one round trip per statement.
            conn = await unit.source.take(autocommit=unit.autocommit)
            try:  # SQLAlchemy, if used from now on, runs on this connection too
                session.sync_session.bind = (await unit.source.engine_for(conn)).sync_engine
            except BaseException:
                await unit.source.discard(conn)
                raise
            unit.conn = conn
            return conn
    known: tuple[SessionTransaction, Any] | None = session.info.get(_DRIVER)
    if known is not None:
        transaction, driver = known
        if transaction.is_active and session.sync_session.get_transaction() is transaction:
            return cast(psycopg.AsyncConnection[Any], driver)
    began, connection = await session.run_sync(_begin)
    if began is not None:
        session.info[_DRIVER] = (began, connection)
    return cast(psycopg.AsyncConnection[Any], connection)

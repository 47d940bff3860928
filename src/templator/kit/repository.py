"""The shared base of every domain's repository: one object per session, typed rows out.

Shape taken from polar's `kit/repository/base.py` (a base class holding the caller's
session, built per use with `from_session`, with a few generic fetch helpers that every
domain repository calls instead of touching the session itself). What differs here:
polar's repositories hand back ORM objects; ours hand back frozen typed rows (schemas
built with `model_construct` from trusted rows, dataclasses or NamedTuples), so nothing
above the repository sees `dict[str, Any]` or a lazily loading object.

Two statement styles, one per repository:

* `fetch_one` / `fetch_all` / `run` — text SQL on the psycopg connection under the
  session (`kit/raw.py`): the hot single-row statements, with no per-call Core
  compilation and server-side prepared statements after a few runs; in a unit whose
  statements each commit by themselves, on its asyncpg statement pool instead
  (`driver_pool.StatementPool`, the same SQL text converted to `$n`);
* `one` / `all` / `scalar` / `scalars` / `execute` — SQLAlchemy Core statements on the
  session's connection: composed queries (search, filters, pagination).

`RowModel` turns a row into a schema by name, in one call into pydantic-core
(`model_validate`). Measured on pydantic 2.14 (docs/benchmarks.md), that is about twice
as fast as `model_construct`, which skips validation but runs in Python: 4.9 µs against
11.6 for a session's 5-field state, 15.9 against 27.4 for a 15-field template. The rows
come from our own tables, so validation never refuses one; it also turns a PostgreSQL
enum's text into the schema's enum, which `model_construct` would leave as text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Self, TypeVar, cast

from pydantic import BaseModel, JsonValue
from sqlalchemy import ColumnElement, Executable, Row, Text, any_, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from templator.kit.pagination import PageParams, decode_cursor
from templator.kit.raw import dollar_params, driver_connection, statement_source

M = TypeVar("M", bound=BaseModel)
Params = Mapping[str, Any] | Sequence[Any]
"""Parameters of a text statement: `%(name)s` placeholders take a mapping, `%s` a tuple."""
JsonRow = dict[str, JsonValue]
"""A whole table row in its JSON form (times as ISO 8601): what a user's export holds."""


def json_row(columns: Sequence[str], values: Sequence[Any]) -> JsonRow:
    """A row as JSON-ready data: times in ISO 8601, the rest as the driver loaded it (JSONB
    as Python data, arrays as lists, enums as their text)."""
    return {
        name: cast(JsonValue, value.isoformat() if isinstance(value, datetime) else value)
        for name, value in zip(columns, values, strict=True)
    }


class RowModel(Generic[M]):
    """Builds `model` from a row of `fields` (in that order; default: the model's fields),
    as one pydantic-core call (see the module's docstring for why not `model_construct`).
    Extra columns after `fields` (an owner's id) are left to the caller."""

    __slots__ = ("_validate", "fields", "model")

    def __init__(self, model: type[M], fields: Sequence[str] | None = None) -> None:
        self.model = model
        self.fields: tuple[str, ...] = tuple(fields or model.model_fields)
        self._validate: Callable[[dict[str, Any]], M] = model.model_validate

    @property
    def columns(self) -> str:
        """The fields as a SELECT/RETURNING list."""
        return ", ".join(self.fields)

    def __call__(self, row: Sequence[Any]) -> M:
        return self._validate(dict(zip(self.fields, row, strict=False)))


def keyset_after(params: PageParams, *, at: str = "created_at", key: str = "id") -> str:
    """The text-SQL form of `kit.pagination.paginate_newest_first`: a WHERE fragment
    (empty without a cursor) and the ORDER BY/LIMIT, reading `%(cursor_at)s`,
    `%(cursor_id)s` and `%(limit)s` from `keyset_params(params)`."""
    after = f"AND ({at} < %(cursor_at)s OR ({at} = %(cursor_at)s AND {key} < %(cursor_id)s)) "
    return (after if params.cursor else "") + f"ORDER BY {at} DESC, {key} DESC LIMIT %(limit)s"


def keyset_params(params: PageParams) -> dict[str, Any]:
    """The values `keyset_after` reads (limit + 1 rows: the extra one says there is more)."""
    values: dict[str, Any] = {"limit": params.limit + 1}
    if params.cursor:
        values["cursor_at"], values["cursor_id"] = decode_cursor(params.cursor)
    return values


def any_of(
    column: ColumnElement[str]
    | ColumnElement[str | None]
    | QueryableAttribute[str]
    | QueryableAttribute[str | None],
    ids: Sequence[str],
) -> ColumnElement[bool]:
    """`column = ANY(ids)`: one array parameter however many ids (an IN list binds one
    parameter each, and a statement takes at most 65,535)."""
    return column == any_(literal(list(ids), ARRAY(Text)))


class Repository:
    """A domain's SQL on the caller's session; a subclass has one method per statement.

    Repositories only read and flush: the edge commits (`kit/uow.py`).
    """

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        """The repository on `session` (polar's spelling, for symmetry with services)."""
        return cls(session)

    # --- text SQL on the driver connection (hot single-row statements) -------------------

    async def fetch_one(self, statement: str, params: Params) -> tuple[Any, ...] | None:
        """The first row of a text statement, or None."""
        statements = statement_source(self.session)
        if statements is not None:  # an autocommit unit's statement pool (asyncpg)
            found = await statements.row(*dollar_params(statement, params))
            return None if found is None else tuple(found)
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(statement, params)
            row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def fetch_all(self, statement: str, params: Params) -> list[tuple[Any, ...]]:
        """Every row of a text statement."""
        statements = statement_source(self.session)
        if statements is not None:
            return [tuple(row) for row in await statements.rows(*dollar_params(statement, params))]
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(statement, params)
            return [tuple(row) for row in await cursor.fetchall()]

    async def fetch_json_rows(self, statement: str, params: Params) -> list[JsonRow]:
        """Every row of a text statement in its JSON form (`json_row`), named by column."""
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(statement, params)
            names = [column.name for column in cursor.description or ()]
            return [json_row(names, row) for row in await cursor.fetchall()]

    async def run(self, statement: str, params: Params) -> int:
        """Run a text statement; the number of rows it touched."""
        statements = statement_source(self.session)
        if statements is not None:
            return await statements.execute(*dollar_params(statement, params))
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(statement, params)
            return cursor.rowcount

    # --- SQLAlchemy Core -----------------------------------------------------------------

    async def one(self, statement: Executable) -> Row[Any] | None:
        """The first row of a Core statement, or None."""
        conn = await self.session.connection()
        return (await conn.execute(statement)).first()

    async def all(self, statement: Executable) -> Sequence[Row[Any]]:
        """Every row of a Core statement."""
        conn = await self.session.connection()
        return (await conn.execute(statement)).all()

    async def scalar(self, statement: Executable) -> Any:
        """The first column of the first row (None when there is no row)."""
        conn = await self.session.connection()
        return (await conn.execute(statement)).scalar()

    async def scalars(self, statement: Executable) -> list[Any]:
        """The first column of every row."""
        conn = await self.session.connection()
        return list((await conn.execute(statement)).scalars())

    async def lock_ids(
        self, id_column: QueryableAttribute[str], where: ColumnElement[bool]
    ) -> list[str]:
        """Lock the rows `where` selects FOR UPDATE, in id order (so two lockers of the
        same rows never deadlock); their ids."""
        statement = select(id_column).where(where).order_by(id_column).with_for_update()
        return [str(i) for i in await self.scalars(statement)]

    async def json_rows(self, statement: Executable) -> list[JsonRow]:
        """Every row of a Core statement in its JSON form (`json_row`)."""
        conn = await self.session.connection()
        result = await conn.execute(statement)
        names = list(result.keys())
        return [json_row(names, row) for row in result.all()]

    async def execute(self, statement: Executable) -> int:
        """Run a Core statement; the number of rows it touched."""
        conn = await self.session.connection()
        result = await conn.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

"""All SQL about stored_objects (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, insert, select

from templator.kit.ids import new_id
from templator.kit.repository import JsonRow, Repository, any_of
from templator.models import StoredObject
from templator.storage.service import PutResult


class DesignRow(NamedTuple):
    """A design's object as its row records it."""

    key: str
    size: int
    content_type: str
    created_at: datetime


def _of(session_ids: list[str], template_ids: list[str]) -> ColumnElement[bool]:
    return any_of(StoredObject.session_id, session_ids) | any_of(
        StoredObject.template_id, template_ids
    )


class StoredObjectRepository(Repository):
    """Reads and writes of stored_objects, on the caller's session."""

    __slots__ = ()

    async def keys_of(self, session_ids: list[str], template_ids: list[str]) -> list[str]:
        """Keys of the objects of these sessions and templates."""
        statement = select(StoredObject.key).where(_of(session_ids, template_ids))
        return [str(key) for key in await self.scalars(statement)]

    async def export_of(self, session_ids: list[str], template_ids: list[str]) -> list[JsonRow]:
        """The object rows of these sessions and templates, in their JSON form."""
        return await self.json_rows(
            select(StoredObject.__table__).where(_of(session_ids, template_ids))
        )

    async def insert(
        self,
        stored: PutResult,
        *,
        kind: str,
        session_id: str | None,
        template_id: str | None,
        sha256: str | None,
    ) -> None:
        """Record an uploaded object, in a savepoint (a failure leaves the transaction usable)."""
        conn = await self.session.connection()
        async with conn.begin_nested():
            await conn.execute(
                insert(StoredObject).values(
                    id=new_id(),
                    key=stored.key,
                    kind=kind,
                    session_id=session_id,
                    template_id=template_id,
                    size=stored.size,
                    content_type=stored.content_type,
                    sha256=sha256,
                )
            )

    async def referenced_keys(self) -> set[str]:
        """Every key a row references."""
        conn = await self.session.connection()
        return set((await conn.execute(select(StoredObject.key))).scalars())

    async def designs_of(self, session_id: str) -> list[DesignRow]:
        """A session's designs, oldest first."""
        conn = await self.session.connection()
        rows = await conn.execute(
            select(
                StoredObject.key,
                StoredObject.size,
                StoredObject.content_type,
                StoredObject.created_at,
            )
            .where(StoredObject.session_id == session_id, StoredObject.kind == "design")
            .order_by(StoredObject.created_at, StoredObject.id)
        )
        return [DesignRow(*row) for row in rows]

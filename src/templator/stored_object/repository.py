"""All SQL about stored_objects: SQLAlchemy Core through kit/repository.py (composed
filters over sessions' and templates' ids)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, insert, select

from templator.kit.ids import new_id
from templator.kit.repository import JsonRow, Repository, any_of
from templator.models import StoredObject
from templator.storage.service import PutResult


@dataclass(frozen=True, slots=True)
class DesignRow:
    """A design's stored_objects row."""

    key: str
    size: int
    content_type: str
    created_at: datetime
    session_id: str | None


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

    async def designs_of(self, session_id: str) -> list[DesignRow]:
        """A session's designs, oldest first."""
        t = StoredObject.__table__
        stmt = (
            select(t.c.key, t.c.size, t.c.content_type, t.c.created_at, t.c.session_id)
            .where(t.c.session_id == session_id, t.c.kind == "design")
            .order_by(t.c.created_at, t.c.id)
        )
        return [DesignRow(*tuple(row)) for row in await self.all(stmt)]

    async def design(self, key: str) -> DesignRow | None:
        """The design recorded under `key`, if any."""
        t = StoredObject.__table__
        stmt = select(t.c.key, t.c.size, t.c.content_type, t.c.created_at, t.c.session_id).where(
            t.c.key == key, t.c.kind == "design"
        )
        row = await self.one(stmt)
        return None if row is None else DesignRow(*tuple(row))

    async def referenced_keys(self) -> set[str]:
        """Every key a row references."""
        return {str(key) for key in await self.scalars(select(StoredObject.key))}

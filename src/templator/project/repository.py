"""All SQL about projects (SQLAlchemy Core: one statement each, rows, no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.models import AISession, StoredObject, Template
from templator.models import Project as ProjectRow
from templator.project import schemas

_COLUMNS = (
    ProjectRow.id,
    ProjectRow.name,
    ProjectRow.description,
    ProjectRow.user_id,
    ProjectRow.created_at,
    ProjectRow.updated_at,
)


@dataclass(frozen=True, slots=True)
class Contents:
    """Ids of a project's sessions and templates."""

    session_ids: list[str]
    template_ids: list[str]


def _schema(row: Any) -> schemas.Project:
    return schemas.Project.model_validate(dict(row._mapping))


class ProjectRepository:
    """Reads and writes of the projects table, on the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, user_id: str, data: schemas.ProjectCreate) -> schemas.Project:
        """Insert one project owned by `user_id` (the foreign key refuses an unknown user)."""
        conn = await self.session.connection()
        statement = (
            insert(ProjectRow)
            .values(id=new_id(), user_id=user_id, **data.model_dump())
            .returning(*_COLUMNS)
        )
        return _schema((await conn.execute(statement)).one())

    async def get(self, project_id: str) -> schemas.Project | None:
        """The project, or None."""
        conn = await self.session.connection()
        row = (await conn.execute(select(*_COLUMNS).where(ProjectRow.id == project_id))).first()
        return _schema(row) if row else None

    async def page_of_user(self, user_id: str, params: PageParams) -> Page[schemas.Project]:
        """A user's projects, newest first (index: user_id, created_at)."""
        conn = await self.session.connection()
        statement = paginate_newest_first(
            select(*_COLUMNS).where(ProjectRow.user_id == user_id),
            created_at=ProjectRow.created_at,
            id_column=ProjectRow.id,
            params=params,
        )
        rows = [_schema(r) for r in (await conn.execute(statement)).all()]
        return make_page(rows, params=params, key=lambda p: (p.created_at, p.id))

    async def update(self, project_id: str, values: dict[str, Any]) -> schemas.Project | None:
        """Apply `values`; None when the project does not exist."""
        conn = await self.session.connection()
        statement = (
            update(ProjectRow)
            .where(ProjectRow.id == project_id)
            .values(**values)
            .returning(*_COLUMNS)
        )
        row = (await conn.execute(statement)).first()
        return _schema(row) if row else None

    async def lock_with_contents(self, project_id: str) -> Contents:
        """Lock the project, then its sessions and templates, until the transaction ends.

        An upload recording an object against one of them (and a new session or template)
        then either commits first, so `object_keys` sees its row, or waits and fails on its
        foreign key once the delete has committed, and deletes its object itself. The ids
        locked are returned, so the caller can name the cache entries the delete ends.
        """
        conn = await self.session.connection()
        await conn.execute(
            select(ProjectRow.id).where(ProjectRow.id == project_id).with_for_update()
        )

        async def locked_ids(table: type[AISession] | type[Template]) -> list[str]:
            statement = (
                select(table.id)
                .where(table.project_id == project_id)
                .order_by(table.id)
                .with_for_update()
            )
            return list((await conn.execute(statement)).scalars())

        return Contents(await locked_ids(AISession), await locked_ids(Template))

    async def object_keys(self, project_id: str) -> list[str]:
        """Keys of every stored object of the project's sessions and templates."""
        conn = await self.session.connection()
        sessions = select(AISession.id).where(AISession.project_id == project_id)
        templates = select(Template.id).where(Template.project_id == project_id)
        statement = select(StoredObject.key).where(
            StoredObject.session_id.in_(sessions) | StoredObject.template_id.in_(templates)
        )
        return list((await conn.execute(statement)).scalars())

    async def delete(self, project_id: str) -> bool:
        """Delete the project; the database cascades to its sessions, templates and logs."""
        conn = await self.session.connection()
        result = await conn.execute(delete(ProjectRow).where(ProjectRow.id == project_id))
        return bool(result.rowcount)

"""All SQL about projects (SQLAlchemy Core: one statement each, rows, no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.kit.repository import JsonRow, Repository, RowModel
from templator.models import AiSession, StoredObject, Template
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


PROJECT = RowModel(schemas.Project, [c.key for c in _COLUMNS])
OWNED_PROJECT = (
    "SELECT id, user_id FROM projects WHERE id = %(project)s AND (user_id = %(actor)s OR %(admin)s)"
)
"""The project `%(project)s` if the actor (`%(actor)s`, `%(admin)s`) may use it, as text
SQL for a statement that must check it itself (`project/ownership.py`)."""


@dataclass(frozen=True, slots=True)
class Contents:
    """Ids of a project's sessions and templates."""

    session_ids: list[str]
    template_ids: list[str]


class ProjectRepository(Repository):
    """Reads and writes of the projects table, on the caller's session."""

    __slots__ = ()

    async def insert(self, user_id: str, data: schemas.ProjectCreate) -> schemas.Project:
        """Insert one project owned by `user_id` (the foreign key refuses an unknown user)."""
        statement = (
            insert(ProjectRow)
            .values(id=new_id(), user_id=user_id, **data.model_dump())
            .returning(*_COLUMNS)
        )
        row = await self.one(statement)
        assert row is not None  # INSERT … RETURNING returns the row it inserted
        return PROJECT(row)

    async def get(self, project_id: str) -> schemas.Project | None:
        """The project, or None."""
        row = await self.one(select(*_COLUMNS).where(ProjectRow.id == project_id))
        return PROJECT(row) if row else None

    async def owner(self, project_id: str) -> str | None:
        """The id of the user owning the project, or None when it does not exist."""
        owner = await self.scalar(select(ProjectRow.user_id).where(ProjectRow.id == project_id))
        return None if owner is None else str(owner)

    async def page_of_user(self, user_id: str, params: PageParams) -> Page[schemas.Project]:
        """A user's projects, newest first (index: user_id, created_at)."""
        statement = paginate_newest_first(
            select(*_COLUMNS).where(ProjectRow.user_id == user_id),
            created_at=ProjectRow.created_at,
            id_column=ProjectRow.id,
            params=params,
        )
        rows = [PROJECT(r) for r in await self.all(statement)]
        return make_page(rows, params=params, key=lambda p: (p.created_at, p.id))

    async def update(
        self, project_id: str, changes: schemas.ProjectUpdate
    ) -> schemas.Project | None:
        """Apply the fields `changes` sets; None when the project does not exist."""
        statement = (
            update(ProjectRow)
            .where(ProjectRow.id == project_id)
            .values(**changes.model_dump(exclude_unset=True))
            .returning(*_COLUMNS)
        )
        row = await self.one(statement)
        return PROJECT(row) if row else None

    async def lock_of_user(self, user_id: str) -> list[str]:
        """Lock the user's projects FOR UPDATE (in id order); their ids."""
        return await self.lock_ids(ProjectRow.id, ProjectRow.user_id == user_id)

    async def export_of_user(self, user_id: str) -> list[JsonRow]:
        """The user's projects, whole rows in their JSON form."""
        return await self.json_rows(
            select(ProjectRow.__table__).where(ProjectRow.user_id == user_id)
        )

    async def lock_with_contents(self, project_id: str) -> Contents:
        """Lock the project, then its sessions and templates, until the transaction ends.

        An upload recording an object against one of them (and a new session or template)
        then either commits first, so `object_keys` sees its row, or waits and fails on its
        foreign key once the delete has committed, and deletes its object itself. The ids
        locked are returned, so the caller can name the cache entries the delete ends.
        """
        await self.execute(
            select(ProjectRow.id).where(ProjectRow.id == project_id).with_for_update()
        )

        return Contents(
            await self.lock_ids(AiSession.id, AiSession.project_id == project_id),
            await self.lock_ids(Template.id, Template.project_id == project_id),
        )

    async def object_keys(self, project_id: str) -> list[str]:
        """Keys of every stored object of the project's sessions and templates."""
        sessions = select(AiSession.id).where(AiSession.project_id == project_id)
        templates = select(Template.id).where(Template.project_id == project_id)
        statement = select(StoredObject.key).where(
            StoredObject.session_id.in_(sessions) | StoredObject.template_id.in_(templates)
        )
        return [str(key) for key in await self.scalars(statement)]

    async def delete(self, project_id: str) -> bool:
        """Delete the project; the database cascades to its sessions, templates and logs."""
        return bool(await self.execute(delete(ProjectRow).where(ProjectRow.id == project_id)))

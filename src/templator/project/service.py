"""Projects: owned by one user; a user's project list is cached."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from templator.cache import Cache
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.kit.uow import after_commit_invalidate
from templator.models import Project as ProjectRow
from templator.project import schemas
from templator.project.errors import ProjectNotFound

_COLUMNS = (
    ProjectRow.id,
    ProjectRow.name,
    ProjectRow.description,
    ProjectRow.user_id,
    ProjectRow.created_at,
    ProjectRow.updated_at,
)
FIRST_PAGE_LIMIT = 50


def _schema(row: Any) -> schemas.Project:
    return schemas.Project.model_validate(dict(row._mapping))


class ProjectService:
    """Create, read, list, change and delete projects, enforcing ownership."""

    def __init__(self, session: AsyncSession, cache: Cache) -> None:
        self.session = session
        self.cache = cache

    def _list_key(self, user_id: str) -> str:
        return self.cache.key("projects", user_id)

    async def create(
        self, actor: Actor, data: schemas.ProjectCreate, *, owner_id: str | None = None
    ) -> schemas.Project:
        """A new project owned by the actor (ADMIN may name another owner)."""
        user_id = owner_id if owner_id and actor.is_admin else actor.id
        conn = await self.session.connection()
        row = (
            await conn.execute(
                insert(ProjectRow)
                .values(id=new_id(), user_id=user_id, **data.model_dump())
                .returning(*_COLUMNS)
            )
        ).one()
        after_commit_invalidate(self.session, self._list_key(user_id))
        return _schema(row)

    async def get(self, actor: Actor, project_id: str) -> schemas.Project:
        """The project, if the actor may see it; else ProjectNotFound (no existence leak)."""
        conn = await self.session.connection()
        row = (await conn.execute(select(*_COLUMNS).where(ProjectRow.id == project_id))).first()
        if row is None or not actor.may_access(row.user_id):
            raise ProjectNotFound(project_id)
        return _schema(row)

    async def list_for(
        self, actor: Actor, user_id: str, params: PageParams
    ) -> Page[schemas.Project]:
        """A user's projects, newest first; the first page is served from the cache."""
        if not actor.may_access(user_id):
            return Page([], None)
        if params.cursor is None and params.limit == FIRST_PAGE_LIMIT:
            cached = await self.cache.get_or_load(
                self._list_key(user_id),
                lambda: self._load_page(user_id, params),
                encode=lambda page: {
                    "items": [p.model_dump(mode="json") for p in page.items],
                    "next": page.next_cursor,
                },
                decode=lambda data: Page(
                    [schemas.Project.model_validate(p) for p in data["items"]], data["next"]
                ),
            )
            assert cached is not None
            return cached
        return await self._load_page(user_id, params)

    async def _load_page(self, user_id: str, params: PageParams) -> Page[schemas.Project]:
        conn = await self.session.connection()
        statement = paginate_newest_first(
            select(*_COLUMNS).where(ProjectRow.user_id == user_id),
            created_at=ProjectRow.created_at,
            id_column=ProjectRow.id,
            params=params,
        )
        rows = [_schema(r) for r in (await conn.execute(statement)).all()]
        return make_page(rows, params=params, key=lambda p: (p.created_at, p.id))

    async def update(
        self, actor: Actor, project_id: str, data: schemas.ProjectUpdate
    ) -> schemas.Project:
        """Change name or description."""
        project = await self.get(actor, project_id)
        values = data.model_dump(exclude_unset=True)
        if not values:
            return project
        conn = await self.session.connection()
        row = (
            await conn.execute(
                update(ProjectRow)
                .where(ProjectRow.id == project_id)
                .values(**values)
                .returning(*_COLUMNS)
            )
        ).one()
        after_commit_invalidate(self.session, self._list_key(project.user_id))
        return _schema(row)

    async def delete(self, actor: Actor, project_id: str) -> schemas.Project:
        """Delete the project and (by cascade) its sessions, templates and logs."""
        project = await self.get(actor, project_id)
        conn = await self.session.connection()
        await conn.execute(delete(ProjectRow).where(ProjectRow.id == project_id))
        after_commit_invalidate(self.session, self._list_key(project.user_id))
        return project

"""Projects: owned by one user; the first page of a user's project list is cached."""

from __future__ import annotations

from typing import TypedDict

from templator.ai_session.cache import state_keys
from templator.audit import service as audit
from templator.kit.actor import Actor
from templator.kit.pagination import DEFAULT_LIMIT, Page, PageParams
from templator.kit.repository import JsonRow
from templator.kit.service import Service
from templator.kit.uow import after_commit_delete_objects, after_commit_invalidate
from templator.project import schemas
from templator.project.cache import list_key
from templator.project.errors import ProjectNotFound
from templator.project.repository import ProjectRepository
from templator.storage.errors import require_store
from templator.storage.service import ObjectStore
from templator.template.cache import template_keys

FIRST_PAGE_LIMIT = DEFAULT_LIMIT
"""Only the page most callers ask for (no cursor, default size) is cached."""


class CachedPage(TypedDict):
    """The first page of a user's projects as the cache holds it (JSON)."""

    items: list[JsonRow]
    next: str | None


def _encode_page(page: Page[schemas.Project]) -> CachedPage:
    return {"items": [p.model_dump(mode="json") for p in page.items], "next": page.next_cursor}


def _decode_page(data: CachedPage) -> Page[schemas.Project]:
    return Page([schemas.Project.model_validate(p) for p in data["items"]], data["next"])


class ProjectService(Service[ProjectRepository, ObjectStore]):
    """Create, read, list, change and delete projects, enforcing ownership; the caller commits."""

    repository_type = ProjectRepository

    async def create(
        self, actor: Actor, data: schemas.ProjectCreate, *, owner_id: str | None = None
    ) -> schemas.Project:
        """A new project owned by the actor (ADMIN may name another owner)."""
        user_id = owner_id if owner_id and actor.is_admin else actor.id
        project = await self.repository.insert(user_id, data)
        after_commit_invalidate(self.session, list_key(self.cache, user_id))
        return project

    async def get(self, actor: Actor, project_id: str) -> schemas.Project:
        """The project, if the actor may see it; else ProjectNotFound (no existence leak)."""
        project = await self.repository.get(project_id)
        if project is None or not actor.may_access(project.user_id):
            raise ProjectNotFound(project_id)
        return project

    async def list_for(
        self, actor: Actor, user_id: str, params: PageParams
    ) -> Page[schemas.Project]:
        """A user's projects, newest first; the first page is served cache-aside."""
        if not actor.may_access(user_id):
            return Page([], None)
        if params.cursor is not None or params.limit != FIRST_PAGE_LIMIT:
            return await self.repository.page_of_user(user_id, params)
        page = await self.cache.get_or_load(
            list_key(self.cache, user_id),
            lambda: self.repository.page_of_user(user_id, params),
            encode=_encode_page,
            decode=_decode_page,
        )
        assert page is not None  # the loader always returns a page, empty or not
        return page

    async def update(
        self, actor: Actor, project_id: str, data: schemas.ProjectUpdate
    ) -> schemas.Project:
        """Change name or description."""
        project = await self.get(actor, project_id)
        if not data.model_fields_set:
            return project
        updated = await self.repository.update(project_id, data)
        if updated is None:  # deleted by someone else since `get`
            raise ProjectNotFound(project_id)
        after_commit_invalidate(self.session, list_key(self.cache, project.user_id))
        return updated

    async def lock_of_user(self, user_id: str) -> list[str]:
        """Lock the user's projects until the transaction ends (an erasure); their ids."""
        return await self.repository.lock_of_user(user_id)

    async def export_of_user(self, user_id: str) -> list[JsonRow]:
        """The user's projects, whole rows as JSON (a GDPR export)."""
        return await self.repository.export_of_user(user_id)

    async def delete(
        self, actor: Actor, project_id: str, *, origin: audit.Origin
    ) -> schemas.Project:
        """Delete the project with its sessions, templates and logs; their objects after commit.

        The cached entries of all of them are dropped after the transaction ends. Audited.
        """
        project = await self.get(actor, project_id)
        contents = await self.repository.lock_with_contents(project_id)
        keys = await self.repository.object_keys(project_id)
        if keys:  # before the delete: with objects to delete and no store, nothing changes
            after_commit_delete_objects(self.session, require_store(self.store), keys)
        if not await self.repository.delete(project_id):
            raise ProjectNotFound(project_id)
        after_commit_invalidate(
            self.session,
            list_key(self.cache, project.user_id),
            *state_keys(self.cache, contents.session_ids),
            *template_keys(self.cache, contents.template_ids),
        )
        await audit.record(
            self.session,
            origin,
            "project.delete",
            target_type="project",
            target_id=project_id,
            details={"owner": project.user_id, "name": project.name},
        )
        return project

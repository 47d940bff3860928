"""User rules: creation, lookup, role changes, and a user's data as GDPR asks for it.

Erasure deletes a user and everything theirs in one transaction; the cached entries of
their projects list, sessions, templates and tokens are dropped once it ends (so the
erased user's tokens stop authenticating and nothing of theirs is served from the
cache), and their objects are deleted from the store once it commits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from templator.ai_session.cache import state_keys
from templator.ai_session.service import AiSessionService
from templator.audit import service as audit
from templator.auth.cache import record_keys
from templator.auth.service import TokenService
from templator.kit.pagination import Page, PageParams
from templator.kit.repository import JsonRow
from templator.kit.service import Service
from templator.kit.uow import ObjectDeletion, after_commit_delete_objects, after_commit_invalidate
from templator.models import UserRole
from templator.processing_log.service import LogService
from templator.project.cache import list_key
from templator.project.service import ProjectService
from templator.storage.service import ObjectStore
from templator.stored_object.service import StoredObjectService
from templator.template.cache import template_keys
from templator.template.service import TemplateService
from templator.user import schemas
from templator.user.errors import UserNotFound
from templator.user.repository import UserRepository


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed: rows with its commit, stored objects after it."""

    user_id: str
    rows: dict[str, int]
    """Rows deleted, by table (projects, ai_sessions, templates, processing_logs)."""
    deletion: ObjectDeletion
    """The user's stored objects: their rows go with the commit, the objects after it."""

    @property
    def objects(self) -> int:
        """Stored objects the user had."""
        return self.deletion.requested

    @property
    def objects_deleted(self) -> int:
        """Objects the store has deleted after the commit (fewer when it failed or is absent)."""
        return self.deletion.deleted

    @property
    def objects_left(self) -> int:
        """Objects still in the store, for `templator storage gc` to remove."""
        return self.objects - self.objects_deleted


class UserService(Service[UserRepository, ObjectStore]):
    """What can be done with users; the caller commits."""

    repository_type = UserRepository

    async def create(self, data: schemas.UserCreate, *, origin: audit.Origin) -> schemas.User:
        """Create a user (email normalised to lowercase; duplicates refused); audited."""
        user = await self.repository.insert(data)
        await audit.record(
            self.session,
            origin,
            "user.create",
            target_type="user",
            target_id=user.id,
            details={"role": user.role.value},
        )
        return user

    async def get(self, user_id: str) -> schemas.User:
        """The user, or UserNotFound."""
        user = await self.repository.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def find(self, id_or_email: str) -> schemas.User:
        """Look a user up by id or email."""
        user = (
            await self.repository.get_by_email(id_or_email)
            if "@" in id_or_email
            else await self.repository.get(id_or_email)
        )
        if user is None:
            raise UserNotFound(id_or_email)
        return user

    async def list(self, params: PageParams) -> Page[schemas.User]:
        """All users, newest first."""
        return await self.repository.list(params)

    async def update(self, user_id: str, data: schemas.UserUpdate) -> schemas.User:
        """Change a user's profile."""
        changed = bool(data.model_fields_set)
        user = await self.repository.update(user_id, data) if changed else await self.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def set_role(self, user_id: str, role: UserRole, *, origin: audit.Origin) -> schemas.User:
        """Change a user's role and forget their cached token records; audited (the caller
        checks that the actor is ADMIN)."""
        before = await self.get(user_id)
        user = await self.repository.set_role(user_id, role)
        if user is None:
            raise UserNotFound(user_id)
        await TokenService(self.session, self.cache).forget_user(user_id)
        await audit.record(
            self.session,
            origin,
            "user.role_change",
            target_type="user",
            target_id=user_id,
            details={"from": before.role.value, "to": role.value},
        )
        return user

    async def export_data(self, user_id: str, *, origin: audit.Origin) -> schemas.UserExport:
        """Every row that is the user's, and presigned links to their objects (GDPR
        access); audited. Each domain's service answers for its own tables."""
        user = await self.repository.export_row(user_id)
        if user is None:
            raise UserNotFound(user_id)
        projects = await ProjectService(self.session, self.cache).export_of_user(user_id)
        sessions = await AiSessionService(self.session, self.cache).export_of_user(user_id)
        templates, versions = await TemplateService(self.session, self.cache).export_of_projects(
            _ids(projects)
        )
        session_ids, template_ids = _ids(sessions), _ids(templates)
        objects = await StoredObjectService(self.session, self.cache).export_of(
            session_ids, template_ids
        )
        if self.store is not None:
            store = self.store
            for obj in objects:
                obj["download_url"] = await asyncio.to_thread(store.presigned_url, str(obj["key"]))
        data = schemas.UserExport(
            user=user,
            projects=projects,
            ai_sessions=sessions,
            templates=templates,
            template_versions=versions,
            processing_logs=await LogService(self.session, self.cache).export_of_sessions(
                session_ids
            ),
            api_tokens=await TokenService(self.session, self.cache).export_of_user(user_id),
            objects=objects,
        )
        await audit.record(
            self.session, origin, "user.export", target_type="user", target_id=user_id
        )
        return data

    async def erase(self, user_id: str, *, origin: audit.Origin) -> Erasure:
        """Delete a user and everything theirs (GDPR erasure); audited; the caller commits.

        Parents are locked before children (as a project delete does), each by its own
        domain's service, so a project, session, template, token or object row being added
        for the user either commits before its ids are read here or waits and fails on
        its foreign key once the erasure has committed. A store failure after the commit
        is logged and leaves the erasure standing, with `objects_deleted` short of
        `objects`.
        """
        if not await self.repository.lock(user_id):
            raise UserNotFound(user_id)
        project_ids = await ProjectService(self.session, self.cache).lock_of_user(user_id)
        session_ids = await AiSessionService(self.session, self.cache).lock_of_user(user_id)
        template_ids = await TemplateService(self.session, self.cache).lock_of_projects(project_ids)
        tokens = TokenService(self.session, self.cache)
        prefixes = await tokens.prefixes_of_user(user_id)
        keys = await StoredObjectService(self.session, self.cache).keys_of(
            session_ids, template_ids
        )
        rows = {
            "projects": len(project_ids),
            "ai_sessions": len(session_ids),
            "templates": len(template_ids),
            "processing_logs": await LogService(self.session, self.cache).count_of_sessions(
                session_ids
            ),
        }
        await self.repository.delete(user_id)
        await TokenService(self.session, self.cache).distrust_cached_records()
        await audit.forget_actor_email(self.session, user_id)
        after_commit_invalidate(
            self.session,
            list_key(self.cache, user_id),
            *state_keys(self.cache, session_ids),
            *template_keys(self.cache, template_ids),
            *record_keys(self.cache, prefixes),
        )
        # Erasure goes ahead without a store (the rows are what GDPR asks to remove first):
        # the objects are reported in `objects_left`, for `templator storage gc`.
        deletion = (
            ObjectDeletion(len(keys))
            if self.store is None
            else after_commit_delete_objects(self.session, self.store, keys)
        )
        await audit.record(
            self.session,
            origin,
            "user.erase",
            target_type="user",
            target_id=user_id,
            details={**rows, "objects": deletion.requested},
        )
        return Erasure(user_id, rows, deletion)


def _ids(rows: list[JsonRow]) -> list[str]:
    return [str(row["id"]) for row in rows]

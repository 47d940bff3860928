"""A user's data, all of it: exported for GDPR access requests, erased for erasure requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.service import AiSessionService
from templator.auth.service import TokenService
from templator.cache import Cache
from templator.connections import Connections
from templator.kit.uow import after_commit_call, after_commit_invalidate
from templator.models import (
    AISession,
    ApiToken,
    ProcessingLog,
    Project,
    StoredObject,
    Template,
    TemplateVersion,
    User,
)
from templator.project.service import ProjectService
from templator.storage.service import ObjectStore
from templator.template.service import TemplateService
from templator.user.errors import UserNotFound
from templator.user.repository import UserRepository

DELETE_BATCH = 1000
"""Objects per S3 DeleteObjects request, so a failure part-way leaves an exact count."""


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row._mapping.items()}


async def export_user_data(
    session: AsyncSession, conns: Connections, user_id: str
) -> dict[str, Any]:
    """Every row that is the user's, and presigned links to their objects."""
    conn = await session.connection()
    user = (await conn.execute(select(User.__table__).where(User.id == user_id))).first()
    if user is None:
        raise UserNotFound(user_id)
    projects = select(Project.id).where(Project.user_id == user_id)
    sessions = select(AISession.id).where(AISession.user_id == user_id)
    templates = select(Template.id).where(Template.project_id.in_(projects))

    async def rows(statement: Any) -> list[dict[str, Any]]:
        return [_plain(r) for r in (await conn.execute(statement)).all()]

    tokens = select(
        ApiToken.id,
        ApiToken.name,
        ApiToken.prefix,
        ApiToken.created_at,
        ApiToken.expires_at,
        ApiToken.revoked_at,
    )
    objects = await rows(
        select(StoredObject.__table__).where(
            StoredObject.session_id.in_(sessions) | StoredObject.template_id.in_(templates)
        )
    )
    if conns.store is not None:
        store = conns.store
        for obj in objects:
            obj["download_url"] = await asyncio.to_thread(store.presigned_url, obj["key"])
    return {
        "user": _plain(user),
        "projects": await rows(select(Project.__table__).where(Project.user_id == user_id)),
        "ai_sessions": await rows(select(AISession.__table__).where(AISession.user_id == user_id)),
        "templates": await rows(
            select(Template.__table__).where(Template.project_id.in_(projects))
        ),
        "template_versions": await rows(
            select(TemplateVersion.__table__).where(TemplateVersion.template_id.in_(templates))
        ),
        "processing_logs": await rows(
            select(ProcessingLog.__table__).where(ProcessingLog.session_id.in_(sessions))
        ),
        "api_tokens": await rows(tokens.where(ApiToken.user_id == user_id)),
        "objects": objects,
    }


@dataclass
class Erasure:
    """What an erasure removed: rows with its commit, stored objects after it."""

    user_id: str
    rows: dict[str, int]
    """Rows deleted, by table (projects, ai_sessions, templates, processing_logs)."""
    objects: int
    """Stored objects the user had: their rows go with the commit, the objects after it."""
    objects_deleted: int = 0
    """Objects the store has deleted after the commit (fewer when it failed or is absent)."""

    @property
    def objects_left(self) -> int:
        """Objects still in the store, for `templator storage gc` to remove."""
        return self.objects - self.objects_deleted


async def erase_user_data(
    session: AsyncSession, *, cache: Cache, store: ObjectStore | None, user_id: str
) -> Erasure:
    """Delete a user and everything theirs; the caller commits.

    Once the transaction ends, the cached entries of their projects list, sessions,
    templates and tokens are dropped (so the erased user's tokens stop authenticating and
    nothing of theirs is served from the cache); once it commits, their objects are
    deleted from the store. A store failure then is logged and leaves the erasure
    standing, with `objects_deleted` short of `objects`.
    """
    repository = UserRepository(session)
    owned = await repository.lock_with_contents(user_id)
    if owned is None:
        raise UserNotFound(user_id)
    rows = await repository.count_owned(user_id)
    await repository.delete(user_id)
    after_commit_invalidate(
        session,
        ProjectService(session, cache).list_key(user_id),
        *map(AiSessionService(session, cache).state_key, owned.session_ids),
        *map(TemplateService(session, cache).cache_key, owned.template_ids),
        *map(TokenService(session, cache).record_key, owned.token_prefixes),
    )
    erasure = Erasure(user_id, rows, len(owned.object_keys))
    if owned.object_keys and store is not None:
        keys, objects = owned.object_keys, store

        async def remove() -> None:
            for start in range(0, len(keys), DELETE_BATCH):
                batch = keys[start : start + DELETE_BATCH]
                erasure.objects_deleted += await asyncio.to_thread(objects.delete_many, batch)

        after_commit_call(session, remove)
    return erasure

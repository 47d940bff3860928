"""A user's data, all of it, for GDPR access requests."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.connections import Connections
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
from templator.user.errors import UserNotFound


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

"""Record and read audit entries (role changes, deletions, exports, erasures, tokens)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.models import AuditEntry, User


class AuditRecord(BaseModel):
    """One audit entry."""

    id: str
    actor_id: str | None
    actor_email: str | None
    action: str
    target_type: str
    target_id: str | None
    request_id: str | None
    details: dict[str, Any] | None
    created_at: datetime


async def record(
    session: AsyncSession,
    actor: Actor | None,
    action: str,
    *,
    target_type: str,
    target_id: str | None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write an entry in the caller's transaction (it commits with the action or not at all)."""
    conn = await session.connection()
    email = None
    if actor is not None:
        email = (
            await conn.execute(select(User.email).where(User.id == actor.id))
        ).scalar_one_or_none()
    await conn.execute(
        insert(AuditEntry).values(
            id=new_id(),
            actor_id=actor.id if actor else None,
            actor_email=email,
            action=action,
            target_type=target_type,
            target_id=target_id,
            request_id=request_id,
            details=details,
        )
    )


async def list_entries(
    session: AsyncSession, params: PageParams, *, target_id: str | None = None
) -> Page[AuditRecord]:
    """Entries, newest first."""
    conn = await session.connection()
    statement = select(AuditEntry)
    if target_id:
        statement = statement.where(AuditEntry.target_id == target_id)
    statement = paginate_newest_first(
        statement, created_at=AuditEntry.created_at, id_column=AuditEntry.id, params=params
    )
    rows = [
        AuditRecord.model_validate(dict(r._mapping)) for r in (await conn.execute(statement)).all()
    ]
    return make_page(rows, params=params, key=lambda e: (e.created_at, e.id))

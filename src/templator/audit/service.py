"""Record and read audit entries (role changes, deletions, exports, erasures, tokens)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from templator.audit.repository import AuditRepository
from templator.audit.schemas import AuditRecord as AuditRecord
from templator.kit.actor import Actor
from templator.kit.pagination import Page, PageParams


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
    repository = AuditRepository(session)
    email = None if actor is None else await repository.user_email(actor.id)
    await repository.insert(
        actor_id=actor.id if actor else None,
        actor_email=email,
        action=action,
        target_type=target_type,
        target_id=target_id,
        request_id=request_id,
        details=details,
    )


async def list_entries(
    session: AsyncSession, params: PageParams, *, target_id: str | None = None
) -> Page[AuditRecord]:
    """Entries, newest first."""
    return await AuditRepository(session).page(params, target_id=target_id)

"""Record and read audit entries (role changes, deletions, exports, erasures, tokens)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from templator.audit.repository import AuditRepository
from templator.audit.schemas import AuditRecord as AuditRecord
from templator.kit.actor import Actor
from templator.kit.pagination import Page, PageParams
from templator.kit.repository import JsonRow


@dataclass(frozen=True, slots=True)
class Origin:
    """Who asked for a sensitive action, as its audit entry names them: an API caller with
    the request's id, or an operator at the command line (no actor, `via` "cli")."""

    actor: Actor | None
    request_id: str | None = None
    via: str | None = None


CLI = Origin(None, via="cli")
"""The origin of what an operator does with the `templator` command."""


async def record(
    session: AsyncSession,
    origin: Origin,
    action: str,
    *,
    target_type: str,
    target_id: str | None,
    details: JsonRow | None = None,
) -> None:
    """Write an entry in the caller's transaction (it commits with the action or not at all).

    Called by the service operation that does the sensitive thing, never by an edge.
    """
    actor = origin.actor
    if origin.via is not None:
        details = {"via": origin.via, **(details or {})}
    await AuditRepository(session).insert(
        actor_id=actor.id if actor else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        request_id=origin.request_id,
        details=details,
    )


async def forget_actor_email(session: AsyncSession, user_id: str) -> int:
    """Drop a user's address from the entries they made (GDPR erasure): each keeps its
    `actor_id`, a random id that names no one once the user's row is gone. The count."""
    return await AuditRepository(session).clear_actor_email(user_id)


async def list_entries(
    session: AsyncSession, params: PageParams, *, target_id: str | None = None
) -> Page[AuditRecord]:
    """Entries, newest first."""
    return await AuditRepository(session).page(params, target_id=target_id)

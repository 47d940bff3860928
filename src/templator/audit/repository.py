"""All SQL about the audit log (SQLAlchemy Core)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from templator.audit.schemas import AuditRecord
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.models import AuditEntry, User


class AuditRepository:
    """Reads and writes of audit_log, on the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_email(self, user_id: str) -> str | None:
        """The e-mail address of a user, or None when there is no such user."""
        conn = await self.session.connection()
        return (
            await conn.execute(select(User.email).where(User.id == user_id))
        ).scalar_one_or_none()

    async def insert(
        self,
        *,
        actor_id: str | None,
        actor_email: str | None,
        action: str,
        target_type: str,
        target_id: str | None,
        request_id: str | None,
        details: dict[str, Any] | None,
    ) -> None:
        """Insert one entry."""
        conn = await self.session.connection()
        await conn.execute(
            insert(AuditEntry).values(
                id=new_id(),
                actor_id=actor_id,
                actor_email=actor_email,
                action=action,
                target_type=target_type,
                target_id=target_id,
                request_id=request_id,
                details=details,
            )
        )

    async def clear_actor_email(self, actor_id: str) -> int:
        """Set actor_email to NULL on every entry of this actor; the count."""
        conn = await self.session.connection()
        result = await conn.execute(
            update(AuditEntry)
            .where(AuditEntry.actor_id == actor_id, AuditEntry.actor_email.is_not(None))
            .values(actor_email=None)
        )
        return int(result.rowcount)

    async def page(self, params: PageParams, *, target_id: str | None = None) -> Page[AuditRecord]:
        """Entries (of one target, if given), newest first."""
        conn = await self.session.connection()
        statement = select(AuditEntry)
        if target_id:
            statement = statement.where(AuditEntry.target_id == target_id)
        statement = paginate_newest_first(
            statement, created_at=AuditEntry.created_at, id_column=AuditEntry.id, params=params
        )
        rows = [
            AuditRecord.model_validate(dict(r._mapping))
            for r in (await conn.execute(statement)).all()
        ]
        return make_page(rows, params=params, key=lambda e: (e.created_at, e.id))

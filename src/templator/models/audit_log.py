"""audit_log: who did what sensitive thing, kept even when the actor is erased."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import ID_TYPE, Base, CreatedAtMixin, IdMixin


class AuditEntry(IdMixin, CreatedAtMixin, Base):
    """One sensitive action. No foreign keys: entries outlive users they mention."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "created_at"),
        Index(None, "target_type", "target_id"),
        Index(None, "actor_id"),  # an erasure clears its actor's address
    )

    actor_id: Mapped[str | None] = mapped_column(ID_TYPE)
    actor_email: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    target_type: Mapped[str] = mapped_column(Text, nullable=False)
    target_id: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

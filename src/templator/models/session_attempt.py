"""session_attempts: every claim of a session by a worker, with how it ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import ID_TYPE, Base

OUTCOMES = ("running", "completed", "failed", "retry", "lease_expired", "released", "cancelled")
_OUTCOMES = ", ".join(f"'{outcome}'" for outcome in OUTCOMES)


class SessionAttempt(Base):
    """One lease of a session: who held it, when, and how it ended (error kept).

    At most one attempt of a session is `running` (a unique partial index): the
    database itself refuses a second holder.
    """

    __tablename__ = "session_attempts"
    __table_args__ = (
        CheckConstraint(f"outcome IN ({_OUTCOMES})", name="outcome_known"),
        Index(None, "session_id", "id"),
        Index(
            "uq_session_attempts_running",
            "session_id",
            unique=True,
            postgresql_where=text("outcome = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ID_TYPE, ForeignKey("ai_sessions.id", ondelete="CASCADE"), nullable=False
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    worker: Mapped[str] = mapped_column(Text, nullable=False)
    lease_hash: Mapped[str] = mapped_column(Text, nullable=False)
    claimed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(Text, nullable=False, server_default="running")
    error: Mapped[Any | None] = mapped_column(JSONB)


class WorkTenant(Base):
    """When each tenant (user) was last served by a claim: the fair claim serves the
    least recently served tenant with ready work first (docs/work-queue.md)."""

    __tablename__ = "work_tenants"

    user_id: Mapped[str] = mapped_column(
        ID_TYPE, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    last_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

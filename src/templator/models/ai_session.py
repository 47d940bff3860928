"""ai_sessions: one AI processing run from design upload to generated module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import ID_TYPE, Base, IdMixin, TimestampMixin
from templator.models.enums import SessionPhase, SessionStatus, session_status_type

_PHASES = ", ".join(f"'{phase.value}'" for phase in SessionPhase)
READY = "status = 'PENDING' AND ready_at IS NOT NULL"
"""A session in the work queue: submitted, not yet claimed (or given back). The claim's
index and its WHERE clause are this one predicate (work/repository.py)."""
LEASED = "status = 'PROCESSING'"
"""The rows whose lease the rescuer watches (idx_ai_sessions_lease_expiry)."""


class AiSession(IdMixin, TimestampMixin, Base):
    """An AI session; its JSONB columns hold each phase's output."""

    __tablename__ = "ai_sessions"
    __table_args__ = (
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
        CheckConstraint(
            "quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)",
            name="quality_score_range",
        ),
        CheckConstraint(
            "processing_time IS NULL OR processing_time >= 0", name="processing_time_positive"
        ),
        CheckConstraint(f"phase IN ({_PHASES})", name="phase_known"),
        Index("idx_ai_sessions_jsonb_gin", "ai_analysis", postgresql_using="gin"),
        Index("idx_ai_sessions_status_created", "status", "created_at"),
        Index("idx_ai_sessions_user_project_status", "user_id", "project_id", "status"),
        Index(None, "project_id", "created_at"),
        CheckConstraint("priority BETWEEN -100 AND 100", name="priority_range"),
        CheckConstraint("max_attempts BETWEEN 1 AND 20", name="max_attempts_range"),
        CheckConstraint("attempt >= 0", name="attempt_positive"),
        # A claim walks one tenant's ready sessions in priority order (work/repository.py).
        Index(
            "idx_ai_sessions_ready",
            "user_id",
            text("priority DESC"),
            "ready_at",
            postgresql_where=text(READY),
        ),
        Index("idx_ai_sessions_lease_expiry", "lease_expires_at", postgresql_where=text(LEASED)),
    )

    project_id: Mapped[str] = mapped_column(
        ID_TYPE, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[str] = mapped_column(
        ID_TYPE, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[SessionStatus] = mapped_column(
        session_status_type,
        nullable=False,
        default=SessionStatus.PENDING,
        server_default=SessionStatus.PENDING.value,
    )
    phase: Mapped[str] = mapped_column(
        Text, nullable=False, default=SessionPhase.UPLOAD.value, server_default="upload"
    )
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0, server_default="0")

    input_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    sections: Mapped[Any | None] = mapped_column(JSONB)
    ai_analysis: Mapped[Any | None] = mapped_column(JSONB)
    suggestions: Mapped[Any | None] = mapped_column(JSONB)
    final_result: Mapped[Any | None] = mapped_column(JSONB)

    processing_time: Mapped[int | None] = mapped_column(Integer, doc="milliseconds")
    error_log: Mapped[Any | None] = mapped_column(JSONB)
    quality_score: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # The work queue (docs/work-queue.md): ready_at is NULL while the session is a draft.
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    priority: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, default=0, server_default="0"
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, default=3, server_default="3"
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_hash: Mapped[str | None] = mapped_column(Text, doc="SHA-256 of the lease token")
    worker: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    phase_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), doc="when the current phase was recorded (or the run began)"
    )

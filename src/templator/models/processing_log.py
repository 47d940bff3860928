"""processing_logs: what happened during an AI session, for debugging and analytics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from templator.models.base import ID_TYPE, Base, IdMixin
from templator.models.enums import LogLevel, log_level_type

TIMESTAMP_READABLE = (
    "timestamp >= '0001-01-02 00:00:00+00' AND timestamp <= '9999-12-20 00:00:00+00'"
)
"""What the driver can read back in any session time zone (it stops at years 1 and 9999);
client-supplied timestamps are checked against a narrower rule first (kit.validation)."""


class ProcessingLog(IdMixin, Base):
    """One log line of a session."""

    __tablename__ = "processing_logs"
    __table_args__ = (
        Index("idx_processing_logs_timestamp_brin", "timestamp", postgresql_using="brin"),
        CheckConstraint(TIMESTAMP_READABLE, name="timestamp_readable"),
    )

    session_id: Mapped[str] = mapped_column(
        ID_TYPE, ForeignKey("ai_sessions.id", ondelete="CASCADE"), nullable=False
    )
    level: Mapped[LogLevel] = mapped_column(
        log_level_type, nullable=False, default=LogLevel.INFO, server_default=LogLevel.INFO.value
    )
    phase: Mapped[str] = mapped_column(Text, nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[Any | None] = mapped_column(JSONB)
    timestamp: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


Index(
    "idx_processing_logs_session_timestamp",
    ProcessingLog.session_id,
    ProcessingLog.timestamp.desc(),
)

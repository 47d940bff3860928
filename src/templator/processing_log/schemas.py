"""Processing log API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from templator.kit.validation import RequestModel, StorableDatetime
from templator.models.enums import LogLevel

MAX_BATCH = 10_000
"""Lines per append (LogBatchTooLarge beyond)."""
MAX_MESSAGE = 8_192
"""Characters per message."""
MAX_DATA_BYTES = 64 * 1024
"""Encoded JSON bytes of one line's `data` (LogLineTooLarge beyond)."""


class LogLine(RequestModel):
    """One line to append."""

    level: LogLevel = LogLevel.INFO
    phase: str = Field(min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=MAX_MESSAGE)
    data: dict[str, Any] | None = None
    timestamp: StorableDatetime | None = None


class LogBatch(RequestModel):
    """Lines to append in one round trip."""

    lines: list[LogLine] = Field(min_length=1, max_length=MAX_BATCH)


class LogQuery(RequestModel):
    """Filters for reading a session's log."""

    levels: list[LogLevel] | None = None
    since: StorableDatetime | None = None
    until: StorableDatetime | None = None


class ProcessingLog(BaseModel):
    """A stored line."""

    id: str
    session_id: str
    level: LogLevel
    phase: str
    message: str
    data: Any = None
    timestamp: datetime

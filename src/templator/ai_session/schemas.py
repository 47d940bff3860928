"""AI session API models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import BaseModel, Field

from templator.kit.validation import JsonInt, RequestModel
from templator.models.enums import SessionPhase, SessionStatus

MAX_PAYLOAD_BYTES = 1024 * 1024
"""A phase payload (encoded JSON) may be at most 1 MiB."""


class AiSessionCreate(RequestModel):
    """A new session in a project."""

    project_id: str = Field(pattern=r"^[a-z][0-9a-z]{24}$")
    input_data: dict[str, Any] | None = None
    draft: bool = Field(
        default=False,
        strict=True,
        description="true: not claimable by workers until POST /sessions/{id}/submit "
        "(upload its designs first)",
    )
    priority: Annotated[JsonInt, Interval(ge=-100, le=100)] = Field(
        default=0, description="higher is claimed first among the same user's sessions"
    )
    max_attempts: Annotated[JsonInt, Interval(ge=1, le=20)] = Field(
        default=3, description="claims before a failing session is FAILED for good"
    )


class PhaseUpdate(RequestModel):
    """One phase's output and the progress reached."""

    phase: SessionPhase
    payload: Any = None
    progress: float = Field(ge=0, le=1, strict=True)


class AiSessionComplete(RequestModel):
    """Completion: the final result (if not already recorded) and a quality score."""

    final_result: dict[str, Any] | None = None
    quality_score: float | None = Field(default=None, ge=0, le=1, strict=True)


class AiSessionFail(RequestModel):
    """Failure details."""

    error: dict[str, Any]
    retryable: bool = Field(
        default=False,
        strict=True,
        description="true: back to the queue after a backoff while attempts are left "
        "(a leased session only); false: FAILED for good",
    )


class AiSessionState(BaseModel):
    """Status and progress: what live listeners and pollers need."""

    id: str
    status: SessionStatus
    phase: SessionPhase
    progress: float
    updated_at: datetime


class AiSession(BaseModel):
    """A whole session."""

    id: str
    project_id: str
    user_id: str
    status: SessionStatus
    phase: SessionPhase
    progress: float
    input_data: Any = None
    sections: Any = None
    ai_analysis: Any = None
    suggestions: Any = None
    final_result: Any = None
    processing_time: int | None = None
    error_log: Any = None
    quality_score: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None = None
    priority: int = 0
    attempt: int = 0
    max_attempts: int = 3
    next_attempt_at: datetime | None = None
    lease_expires_at: datetime | None = None
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class SessionResult:
    """A session's outcome as another domain reads it (a template is made from it)."""

    user_id: str
    project_id: str
    status: SessionStatus
    final_result: object
    """The stored JSON, as the generation phase or `complete` wrote it."""
    quality_score: float | None

    def result_field(self, name: str) -> object:
        """One key of the final result (None when absent or when it is no JSON object)."""
        if isinstance(self.final_result, dict):
            return self.final_result.get(name)
        return None

"""The rules of the session lifecycle, in one place: the service checks them in Python and
repository.py generates its conditional UPDATEs from them (statuses and phase order), so
a change here changes both (tests/ai_session/test_lifecycle_rules.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from templator.config import Settings
from templator.models.enums import SessionPhase, SessionStatus

FINAL = frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED})
ALLOWED: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.PENDING: frozenset(
        {SessionStatus.PROCESSING, SessionStatus.FAILED, SessionStatus.CANCELLED}
    ),
    # PROCESSING → PENDING: a retry, a rescued lease or a released one (the work queue).
    SessionStatus.PROCESSING: frozenset(
        {
            SessionStatus.PENDING,
            SessionStatus.COMPLETED,
            SessionStatus.FAILED,
            SessionStatus.CANCELLED,
        }
    ),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.FAILED: frozenset(),
    SessionStatus.CANCELLED: frozenset(),
}
PHASE_ORDER = list(SessionPhase)
PHASE_COLUMN = {
    # The upload phase's payload is merged under the web app's input_data, never over it.
    SessionPhase.UPLOAD: "input_data",
    SessionPhase.SECTION_DETECTION: "sections",
    SessionPhase.AI_ANALYSIS: "ai_analysis",
    SessionPhase.SUGGESTIONS: "suggestions",
    SessionPhase.GENERATION: "final_result",
}
PHASE_STATUSES = frozenset({SessionStatus.PROCESSING})
"""Statuses in which phases are recorded: a session being worked on. A PENDING session is
claimed (or started by its owner) first — recording a phase never starts it silently."""


def can_move(current: SessionStatus, target: SessionStatus) -> bool:
    """True when the lifecycle allows current → target."""
    return target in ALLOWED[current]


def sources_of(target: SessionStatus) -> list[str]:
    """Statuses from which `target` may be reached (as stored values)."""
    return [s.value for s, targets in ALLOWED.items() if target in targets]


def phase_statuses() -> list[str]:
    """Statuses whose phases may be recorded (as stored values)."""
    return [s.value for s in ALLOWED if s in PHASE_STATUSES]


def phase_index(phase: SessionPhase | str) -> int:
    """Position of a phase in the order."""
    return PHASE_ORDER.index(SessionPhase(phase))


def sql_list(values: Iterable[str]) -> str:
    """Stored values as an SQL list of literals: `'PENDING', 'PROCESSING'` (values come
    from our enums, never from a request)."""
    return ", ".join(f"'{value}'" for value in values)


def retry_delay_sql(attempt: str) -> str:
    """SQL for the backoff before the retry after attempt number `attempt` (a column):
    base x 2^(attempt-1), capped, of which a random half is waited ("equal jitter": never
    less than half the delay, so a broken dependency is not hammered, and retries that
    failed together spread out). Binds %(retry_base)s and %(retry_max)s (seconds)."""
    return (
        f"make_interval(secs => LEAST(%(retry_max)s, %(retry_base)s * "
        f"power(2, GREATEST({attempt}, 1) - 1)) * (0.5 + random() / 2))"
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The backoff before a retry (settings WORK_RETRY_BASE_SECONDS / _MAX_SECONDS)."""

    base_seconds: float
    max_seconds: float

    @classmethod
    def default(cls) -> RetryPolicy:
        """The settings' defaults."""
        fields = Settings.model_fields
        return cls(
            fields["work_retry_base_seconds"].default, fields["work_retry_max_seconds"].default
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the settings configure."""
        return cls(settings.work_retry_base_seconds, settings.work_retry_max_seconds)

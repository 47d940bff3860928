"""The rules of the session lifecycle, in one place: the service checks them in Python and
repository.py generates its conditional UPDATEs from them (statuses and phase order), so
a change here changes both (tests/ai_session/test_lifecycle_rules.py)."""

from __future__ import annotations

from collections.abc import Iterable

from templator.models.enums import SessionPhase, SessionStatus

FINAL = frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED})
ALLOWED: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.PENDING: frozenset(
        {SessionStatus.PROCESSING, SessionStatus.FAILED, SessionStatus.CANCELLED}
    ),
    SessionStatus.PROCESSING: frozenset(
        {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
    ),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.FAILED: frozenset(),
    SessionStatus.CANCELLED: frozenset(),
}
PHASE_ORDER = list(SessionPhase)
PHASE_COLUMN = {
    SessionPhase.UPLOAD: "input_data",
    SessionPhase.SECTION_DETECTION: "sections",
    SessionPhase.AI_ANALYSIS: "ai_analysis",
    SessionPhase.SUGGESTIONS: "suggestions",
    SessionPhase.GENERATION: "final_result",
}
PHASE_STARTS = SessionStatus.PROCESSING
"""Recording a phase of a session that may still move here moves it here (PENDING →
PROCESSING): the first phase output starts the work."""


def can_move(current: SessionStatus, target: SessionStatus) -> bool:
    """True when the lifecycle allows current → target."""
    return target in ALLOWED[current]


def sources_of(target: SessionStatus) -> list[str]:
    """Statuses from which `target` may be reached (as stored values)."""
    return [s.value for s, targets in ALLOWED.items() if target in targets]


def open_statuses() -> list[str]:
    """Statuses whose phases may still be recorded: every status but the final ones."""
    return [s.value for s in ALLOWED if s not in FINAL]


def phase_index(phase: SessionPhase | str) -> int:
    """Position of a phase in the order."""
    return PHASE_ORDER.index(SessionPhase(phase))


def sql_list(values: Iterable[str]) -> str:
    """Stored values as an SQL list of literals: `'PENDING', 'PROCESSING'` (values come
    from our enums, never from a request)."""
    return ", ".join(f"'{value}'" for value in values)

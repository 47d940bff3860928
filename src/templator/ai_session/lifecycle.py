"""The rules of the session lifecycle, in one place."""

from __future__ import annotations

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


def can_move(current: SessionStatus, target: SessionStatus) -> bool:
    """True when the lifecycle allows current → target."""
    return target in ALLOWED[current]


def sources_of(target: SessionStatus) -> list[str]:
    """Statuses from which `target` may be reached (as stored values)."""
    return [s.value for s, targets in ALLOWED.items() if target in targets]


def phase_index(phase: SessionPhase | str) -> int:
    """Position of a phase in the order."""
    return PHASE_ORDER.index(SessionPhase(phase))

"""The AI-session domain's process-local metrics: how long each phase took."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import Histogram

from templator.models.enums import SessionPhase

PHASE_SECONDS = Histogram(
    "templator_session_phase_seconds",
    "Seconds from the previous phase (or the claim, or the start) to this phase's record, "
    "by phase: how long workers take over each step",
    ["phase"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
for _phase in SessionPhase:
    PHASE_SECONDS.labels(_phase.value)


def phase_timer(phase: SessionPhase, seconds: float) -> Callable[[], Awaitable[None]]:
    """An after-commit task observing one phase's duration (a rolled-back record counts
    for nothing)."""

    async def observe() -> None:
        PHASE_SECONDS.labels(phase.value).observe(max(0.0, seconds))

    return observe

"""The work queue's process-local counters on /metrics (the queue's depth per state and
tenant is read from the database at each scrape: monitoring/collector.py)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from templator.ai_session.schemas import AiSession, AiSessionState
from templator.models.enums import SessionStatus

CLAIMS = Counter("templator_work_claims_total", "Sessions handed to workers by a claim")
LEASE_EXPIRIES = Counter(
    "templator_work_lease_expiries_total",
    "Leases that ran out without a heartbeat, by what the rescuer did",
    ["result"],
)
ATTEMPTS = Counter(
    "templator_work_attempts_total",
    "Attempts started by a claim, by attempt number (1, 2, 3, 4+)",
    ["attempt"],
)
for result in ("retry", "failed"):
    LEASE_EXPIRIES.labels(result)
for number in ("1", "2", "3", "4+"):
    ATTEMPTS.labels(number)


def claimed(session: AiSession) -> None:
    """Count a claim and its attempt number."""
    CLAIMS.inc()
    ATTEMPTS.labels(str(session.attempt) if session.attempt < 4 else "4+").inc()


def rescued(states: Sequence[AiSessionState]) -> None:
    """Count expired leases by outcome."""
    for state in states:
        LEASE_EXPIRIES.labels("failed" if state.status is SessionStatus.FAILED else "retry").inc()

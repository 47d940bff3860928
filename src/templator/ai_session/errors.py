"""AI session errors."""

from __future__ import annotations

from templator.exceptions import Conflict, NotFound, PayloadTooLarge


class AiSessionNotFound(NotFound):
    """No session with that id (or not visible to the caller)."""

    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} does not exist", field="session_id")


class InvalidAiSessionTransition(Conflict):
    """The session's status does not allow this move."""

    code = "invalid_session_transition"


class AiSessionFinished(InvalidAiSessionTransition):
    """The session reached a final status; nothing about it changes any more."""

    code = "session_finished"


class AiSessionChangedConcurrently(Conflict):
    """Another request changed the session between our read and our write; retry."""

    code = "session_changed_concurrently"


class ProgressWentBackwards(Conflict):
    """Progress only moves forward (409: any progress is a valid value; it conflicts with
    the session's current state, like a phase that went backwards)."""

    code = "progress_went_backwards"


class PhaseWentBackwards(Conflict):
    """Phases run in order."""

    code = "phase_went_backwards"


class AiSessionPayloadTooLarge(PayloadTooLarge):
    """A phase payload over the limit."""

    code = "session_payload_too_large"


class SessionNotDraft(Conflict):
    """Only a draft session can be submitted to the work queue."""

    code = "session_not_draft"


class LeaseRequired(Conflict):
    """A worker holds this session: a write must carry its `Lease-Token`."""

    code = "lease_required"


class LeaseInvalid(Conflict):
    """The `Lease-Token` is no lease of this session (wrong, foreign or malformed)."""

    code = "lease_invalid"


class LeaseLost(Conflict):
    """The `Lease-Token` was this session's lease for an earlier attempt: the session was
    rescued, released or retried since; the worker must drop it."""

    code = "lease_lost"


class LeaseExpired(Conflict):
    """The lease is the current one but ran out (no heartbeat in time); the rescuer will
    give the session to another worker."""

    code = "lease_expired"


LEASE_ERRORS = (LeaseRequired, LeaseInvalid, LeaseLost, LeaseExpired)
"""What a worker's write may meet (for the OpenAPI document of each write)."""

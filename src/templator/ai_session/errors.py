"""AI session errors."""

from __future__ import annotations

from templator.exceptions import Conflict, NotFound, PayloadTooLarge, ValidationFailed


class SessionNotFound(NotFound):
    """No session with that id (or not visible to the caller)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} does not exist", field="session_id")


class InvalidSessionTransition(Conflict):
    """The session's status does not allow this move."""


class ProgressWentBackwards(ValidationFailed):
    """Progress only moves forward."""


class PhaseWentBackwards(Conflict):
    """Phases run in order."""


class SessionPayloadTooLarge(PayloadTooLarge):
    """A phase payload over the limit."""

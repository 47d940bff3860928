"""Idempotency-Key errors."""

from __future__ import annotations

from templator.exceptions import Conflict, ValidationFailed


class IdempotencyKeyReused(ValidationFailed):
    """The key was used before with another request (method, path or body)."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used with another request (method, path or body); "
            "send a new key for a new request",
            field="Idempotency-Key",
        )


class IdempotencyKeyInFlight(Conflict):
    """A request with this key is still being processed."""

    code = "idempotency_key_in_flight"

    def __init__(self) -> None:
        super().__init__(
            "a request with this Idempotency-Key is still being processed; retry it with "
            "the same key once that one has answered",
            field="Idempotency-Key",
        )

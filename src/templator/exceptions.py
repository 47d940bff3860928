"""The application's error hierarchy: one base carrying a message and an HTTP status."""

from __future__ import annotations


class TemplatorError(Exception):
    """Base of every error the platform raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(TemplatorError):
    """The request is malformed."""

    status_code = 400
    code = "bad_request"


class Unauthorized(TemplatorError):
    """No valid credential."""

    status_code = 401
    code = "unauthorized"


class Forbidden(TemplatorError):
    """The credential is valid but may not do this."""

    status_code = 403
    code = "forbidden"


class NotFound(TemplatorError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    status_code = 404
    code = "not_found"


class Conflict(TemplatorError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(TemplatorError):
    """A body or upload is over its limit."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(TemplatorError):
    """A content type is not accepted."""

    status_code = 415
    code = "unsupported_media_type"


class ValidationFailed(TemplatorError):
    """A value is outside what the field allows."""

    status_code = 422
    code = "validation_failed"


class TooManyFailedAuthentications(TemplatorError):
    """The client's address failed to authenticate too often; retry after a while."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class ServiceUnavailable(TemplatorError):
    """A store the operation needs cannot be reached."""

    status_code = 503
    code = "service_unavailable"
    # Seconds a client should wait before retrying (the Retry-After header).
    retry_after: int = 2
    # The store that failed (a label of templator_store_unavailable_total), if known.
    store: str | None = None


class DatabaseUnavailable(ServiceUnavailable):
    """PostgreSQL is down, refusing connections, restarting or not answering."""

    code = "database_unavailable"
    store = "postgres"


def first_line(error: BaseException | str) -> str:
    """The first non-blank line of an error's message, stripped (an exception's class name
    when its message is empty): what a one-line log entry or CLI message shows of it."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if lines:
        return lines[0]
    return type(error).__name__ if isinstance(error, BaseException) else ""

"""When the client retries, and how long it waits: shared by `Client` and `AsyncClient`.

* A request that never reached the server (connect error or timeout) is always retried.
* A request that may have run (read timeout, dropped connection, 502/503/504, 429, 409
  `idempotency_key_in_flight`) is retried only when repeating it is safe: a GET, a
  create carrying an Idempotency-Key (the client gives every create one), whose retry the
  server answers with the first response, a heartbeat, or a completion
  (`POST /work/{id}/complete`, idempotent by its lease).
* Waits grow exponentially with full jitter (AWS's "Exponential Backoff and Jitter"),
  from 0.2 s up to 5 s, or what `Retry-After` asks for (capped at 30 s).
"""

from __future__ import annotations

import random

import httpx

from templator.client.errors import ApiError, ApiUnavailable

RETRY_STATUSES = frozenset({429, 502, 503, 504})
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError)
BASE_DELAY = 0.2
MAX_DELAY = 5.0
MAX_RETRY_AFTER = 30.0


def should_retry_response(response: httpx.Response, *, safe: bool) -> bool:
    """True when this answer is worth another try of a request that is `safe` to repeat."""
    if not safe:
        return False
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code == 409:
        try:
            return bool(response.json().get("code") == "idempotency_key_in_flight")
        except ValueError:
            return False
    return False


def should_retry_error(error: httpx.TransportError, *, safe: bool) -> bool:
    """True when a transport failure is worth another try."""
    return isinstance(error, NOT_SENT) or (safe and isinstance(error, MAYBE_SENT))


def delay(attempt: int, response: httpx.Response | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based)."""
    if response is not None:
        after = response.headers.get("retry-after", "")
        if after.isdigit():
            return min(float(after), MAX_RETRY_AFTER)
    return random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)))


def wait_after_error(
    error: httpx.TransportError, attempt: int, retries: int, *, safe: bool
) -> float | None:
    """Seconds to wait before trying again after a transport failure; None: give up."""
    if attempt > retries or not should_retry_error(error, safe=safe):
        return None
    return delay(attempt)


def wait_after_response(
    response: httpx.Response, attempt: int, retries: int, *, safe: bool
) -> float | None:
    """Seconds to wait before trying again after an error answer; None: give up."""
    if attempt > retries or not should_retry_response(response, safe=safe):
        return None
    return delay(attempt, response)


def next_wait(
    method: str,
    path: str,
    attempt: int,
    retries: int,
    *,
    safe: bool,
    response: httpx.Response | None = None,
    error: httpx.TransportError | None = None,
) -> float:
    """Seconds to wait before trying `method path` again after its `attempt`th try met an
    error answer (`response`) or a transport failure (`error`); raises `ApiError` (the
    answer's problem) or `ApiUnavailable` when it is not to be tried again."""
    if error is not None:
        wait = wait_after_error(error, attempt, retries, safe=safe)
        if wait is None:
            raise ApiUnavailable(f"{method} {path}: {error!r}") from error
        return wait
    assert response is not None
    wait = wait_after_response(response, attempt, retries, safe=safe)
    if wait is None:
        raise ApiError.from_response(response)
    return wait


def store_refusal(response: httpx.Response) -> tuple[int, str, str] | None:
    """(status, code, detail) when the store refused a direct upload's POST, else None."""
    if response.status_code < 300:
        return None
    return response.status_code, "store_refused_upload", response.text[:500]

"""uvicorn's HTTP protocol with the limits uvicorn lacks: a connection cap, header and
body read timeouts and a header size cap.

uvicorn bounds requests in flight (`limit_concurrency`, 503 past it) and idle time
between requests (`timeout_keep_alive`), but nothing bounds how long a client may take
to send a request: its keep-alive timer is disarmed by the first byte, and an ASGI
middleware only runs once the headers are complete. So a client dribbling half a header
or a slow body holds a connection (and a descriptor) for as long as it likes, and
uvicorn accepts connections without limit. This subclass of its httptools protocol (the
one `uvicorn[standard]` runs) arms a deadline when a request starts, answers 408 and
closes the connection when the headers or the body are not in by then, answers 431 to a
head larger than `max_header_bytes` (httptools has no such limit), and answers 503 to a
connection past `max_connections` before closing it. Nothing changes once a request is
read: a long response (an event stream) is not timed.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from templator.config import Settings


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits one API worker holds every connection to."""

    max_connections: int
    header_timeout: float
    body_timeout: float
    max_header_bytes: int

    @classmethod
    def of(cls, conf: Settings) -> ConnectionLimits:
        """The limits the settings configure."""
        return cls(
            max_connections=conf.api_max_connections,
            header_timeout=conf.api_header_timeout,
            body_timeout=conf.api_body_timeout,
            max_header_bytes=conf.api_max_header_bytes,
        )


def _problem(status: int, reason: str, detail: str, code: str) -> bytes:
    """A whole problem+json response that closes the connection."""
    body = (
        f'{{"type":"about:blank","title":"{reason}","status":{status},'
        f'"detail":"{detail}","code":"{code}"}}'
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        + ("retry-after: 1\r\n" if status == 503 else "")
        + "connection: close\r\n\r\n"
    )
    return head.encode() + body


TOO_MANY_CONNECTIONS = _problem(
    503,
    "Service Unavailable",
    "this server holds as many connections as it allows (API_MAX_CONNECTIONS); retry",
    "too_many_connections",
)
HEADER_TIMEOUT = _problem(
    408,
    "Request Timeout",
    "the request's headers did not arrive in time (API_HEADER_TIMEOUT)",
    "request_timeout",
)
BODY_TIMEOUT = _problem(
    408,
    "Request Timeout",
    "the request's body did not arrive in time (API_BODY_TIMEOUT)",
    "request_timeout",
)
HEADER_TOO_LARGE = _problem(
    431,
    "Request Header Fields Too Large",
    "the request's line and headers exceed API_MAX_HEADER_BYTES",
    "headers_too_large",
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under `ConnectionLimits` (see the module docstring)."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes: int | None = 0
        """Bytes of the current request's head so far; None once the head is complete."""

    def _arm(self, seconds: float, answer: bytes) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, answer)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, answer: bytes) -> None:
        """Answer `answer` (unless a response has begun) and close the connection."""
        self._disarm()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(answer)
        self.transport.close()

    def _expire(self, answer: bytes) -> None:
        self._deadline = None
        self._refuse(answer)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(TOO_MANY_CONNECTIONS)
            return
        self._arm(self.limits.header_timeout, HEADER_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._head_bytes is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(HEADER_TOO_LARGE)
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A request on a kept-alive connection: its head is timed from its first byte.
        if self._head_bytes is None:
            self._head_bytes = 0
            self._arm(self.limits.header_timeout, HEADER_TIMEOUT)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._arm(self.limits.body_timeout, BODY_TIMEOUT)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def bounded_protocol(conf: Settings) -> type[asyncio.Protocol]:
    """The protocol `uvicorn.run(http=…)` takes, with the settings' limits (a partial of
    a module-level class, so it pickles into each worker process)."""
    protocol: Any = functools.partial(BoundedHttpToolsProtocol, limits=ConnectionLimits.of(conf))
    return protocol  # type: ignore[no-any-return]

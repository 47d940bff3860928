"""Body size limits, enforced before a body is read (Content-Length) and while it streams."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_LIMIT = 2 * 1024 * 1024
MULTIPART_SLACK = 1024 * 1024
"""Room for the multipart framing around an upload of exactly UPLOAD_MAX_BYTES; the file
itself is held to the limit by the storage service, with the same problem."""

TOO_LARGE_TITLE = "Content Too Large"
"""RFC 9110's name for 413, used by every 413 the API sends."""


def too_large_detail(limit: int) -> str:
    """The one wording of a 413: the limit the client has to stay within."""
    return f"request body exceeds the limit of {limit:,} bytes ({limit / 1_048_576:g} MiB)"


class BodyTooLarge(HTTPException):
    """Raised inside receive() when a streamed body passes its limit.

    An HTTPException, because FastAPI turns any other error raised while it reads a body
    into `400 There was an error parsing the body`; this one it lets through, and the
    problem handler answers it like the Content-Length refusal below.
    """

    def __init__(self, limit: int, code: str) -> None:
        super().__init__(413, too_large_detail(limit))
        self.limit = limit
        self.code = code


class BodyLimitMiddleware:
    """413 problem+json for bodies over the limit; uploads get the upload limit."""

    def __init__(self, app: ASGIApp, *, json_limit: int = JSON_LIMIT, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    def _limit(self, scope: Scope) -> tuple[int, int, str]:
        """(the limit to report, the bytes a body may have, the problem's code)."""
        if scope["path"].endswith("/designs"):
            # The same code as the storage service's own refusal of a too large file.
            return self.upload_limit, self.upload_limit + MULTIPART_SLACK, "upload_too_large"
        return self.json_limit, self.json_limit, "payload_too_large"

    async def _reject(self, scope: Scope, send: Send, limit: int, code: str) -> None:
        state = scope.get("state") or {}
        body = orjson.dumps(
            {
                "type": "about:blank",
                "title": TOO_LARGE_TITLE,
                "status": 413,
                "detail": too_large_detail(limit),
                "instance": scope["path"],
                "code": code,
                **({"request_id": state["request_id"]} if "request_id" in state else {}),
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit, allowed, code = self._limit(scope)
        headers: dict[bytes, bytes] = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > allowed:
            await self._reject(scope, send, limit, code)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > allowed:
                    raise BodyTooLarge(limit, code)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, send, limit, code)

"""`AsyncClient`: the API over an httpx.AsyncClient, every call of `calls.py` as a method."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from templator.client import calls, policy
from templator.client.errors import ApiError, ApiUnavailable
from templator.stored_object.schemas import DesignStored, DirectUploadRequest

P = ParamSpec("P")
T = TypeVar("T")
# Below uvicorn's 5 s keep-alive: a connection the server is closing is never reused
# (httpx's own 5 s raced it: "Server disconnected without sending a response").
KEEPALIVE = 2.0


def _method(
    build: Callable[P, calls.Call[T]],
) -> Callable[Concatenate[AsyncClient, P], Awaitable[T]]:
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    method.__name__ = build.__name__
    method.__doc__ = build.__doc__
    return method


class AsyncClient:
    """The Templator API (asyncio). Errors are `ApiError` with the problem's `code`."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        self.retries = retries
        self.http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=KEEPALIVE),
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self.http.aclose()

    async def send(self, call: calls.Call[T]) -> T:
        """Send `call`, retrying what `policy` allows; its parsed answer or `ApiError`."""
        extra: dict[str, Any] = {} if call.timeout is None else {"timeout": call.timeout}
        for attempt in itertools.count(1):
            try:
                response = await self.http.request(
                    call.method,
                    call.path,
                    json=call.json,
                    headers=call.headers,
                    files=call.files,
                    **extra,
                )
            except httpx.TransportError as exc:
                wait = policy.wait_after_error(exc, attempt, self.retries, safe=call.safe)
                if wait is None:
                    raise ApiUnavailable(f"{call.method} {call.path}: {exc!r}") from exc
                await asyncio.sleep(wait)
                continue
            if response.status_code < 400:
                return call.parse(response)
            wait = policy.wait_after_response(response, attempt, self.retries, safe=call.safe)
            if wait is None:
                raise ApiError.from_response(response)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def upload_design_direct(
        self, session_id: str, content: bytes, *, filename: str, content_type: str
    ) -> DesignStored:
        """Send a design straight to the store (presigned POST), then confirm it."""
        request = DirectUploadRequest(
            filename=filename, content_type=content_type, size=len(content)
        )
        post = await self.send(calls.direct_upload(session_id, request))
        async with httpx.AsyncClient(timeout=self.http.timeout) as store:
            stored = await store.post(
                post.url, data=post.fields, files={"file": (filename, content, content_type)}
            )
        if (refusal := policy.store_refusal(stored)) is not None:
            raise ApiError(*refusal)
        return await self.send(calls.confirm_design(session_id, post.key))

    create_project = _method(calls.create_project)
    create_session = _method(calls.create_session)
    submit_session = _method(calls.submit_session)
    get_session = _method(calls.get_session)
    session_state = _method(calls.session_state)
    cancel_session = _method(calls.cancel_session)
    attempts = _method(calls.attempts)
    upload_design = _method(calls.upload_design)
    direct_upload = _method(calls.direct_upload)
    confirm_design = _method(calls.confirm_design)
    list_designs = _method(calls.list_designs)
    claim = _method(calls.claim)
    heartbeat = _method(calls.heartbeat)
    release = _method(calls.release)
    record_phase = _method(calls.record_phase)
    append_logs = _method(calls.append_logs)
    complete = _method(calls.complete)
    fail = _method(calls.fail)
    template_from_session = _method(calls.template_from_session)
    project_templates = _method(calls.project_templates)
    export_module = _method(calls.export_module)

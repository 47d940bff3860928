"""`Client`: the API over a blocking httpx.Client, every call of `calls.py` as a method
(`methods.Calls`, shared with `AsyncClient`)."""

from __future__ import annotations

import itertools
import time
from types import TracebackType
from typing import TypeVar

import httpx

from templator.client import calls, policy
from templator.client.errors import ApiError
from templator.client.methods import Calls
from templator.stored_object.schemas import DesignStored, DirectUploadRequest

T = TypeVar("T")
# Below uvicorn's 5 s keep-alive: a connection the server is closing is never reused
# (httpx's own 5 s raced it: "Server disconnected without sending a response").
KEEPALIVE = 2.0


class Client(Calls):
    """The Templator API (blocking). Errors are `ApiError` with the problem's `code`."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE),
        )
        self._store: httpx.Client | None = None  # presigned URLs: as AsyncClient.store

    def store(self) -> httpx.Client:
        """The HTTP client for presigned object-store URLs (no API credentials)."""
        if self._store is None:
            self._store = httpx.Client(
                timeout=self.http.timeout, limits=httpx.Limits(keepalive_expiry=KEEPALIVE)
            )
        return self._store

    def download(self, url: str) -> bytes:
        """The bytes behind a presigned GET URL (a design of a claim)."""
        response = self.store().get(url)
        response.raise_for_status()
        return response.content

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.http.close()
        if self._store is not None:
            self._store.close()

    def send(self, call: calls.Call[T]) -> T:
        """Send `call`, retrying what `policy` allows; its parsed answer or `ApiError`."""
        for attempt in itertools.count(1):
            try:
                response = self.http.request(**call.request())
            except httpx.TransportError as exc:
                time.sleep(call.wait(attempt, self.retries, error=exc))
                continue
            if response.status_code < 400:
                return call.parse(response)
            time.sleep(call.wait(attempt, self.retries, response=response))
        raise AssertionError("unreachable")  # pragma: no cover

    def upload_design_direct(
        self, session_id: str, content: bytes, *, filename: str, content_type: str
    ) -> DesignStored:
        """Send a design straight to the store (presigned POST), then confirm it."""
        request = DirectUploadRequest(
            filename=filename, content_type=content_type, size=len(content)
        )
        post = self.send(calls.direct_upload(session_id, request))
        stored = self.store().post(
            post.url, data=post.fields, files={"file": (filename, content, content_type)}
        )
        if (refusal := policy.store_refusal(stored)) is not None:
            raise ApiError(*refusal)
        return self.send(calls.confirm_design(session_id, post.key))

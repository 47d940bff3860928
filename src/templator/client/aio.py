"""`AsyncClient`: the API over an httpx.AsyncClient, every call of `calls.py` as a method
(`methods.Calls`, shared with `Client`)."""

from __future__ import annotations

import asyncio
import itertools
from types import TracebackType
from typing import TypeVar

import httpx

from templator.client import calls, policy
from templator.client.errors import ApiError
from templator.client.methods import Calls
from templator.client.sync import KEEPALIVE
from templator.stored_object.schemas import DesignStored, DirectUploadRequest

T = TypeVar("T")


class AsyncClient(Calls):
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
        # The object store's presigned URLs (designs down, direct uploads up): one client
        # for the whole run, made at first use. A client per download built a TLS context
        # each time (loading the CA bundle), which was most of a worker's CPU.
        self._store: httpx.AsyncClient | None = None

    def store(self) -> httpx.AsyncClient:
        """The HTTP client for presigned object-store URLs (no API credentials)."""
        if self._store is None:
            self._store = httpx.AsyncClient(
                timeout=self.http.timeout, limits=httpx.Limits(keepalive_expiry=KEEPALIVE)
            )
        return self._store

    async def download(self, url: str) -> bytes:
        """The bytes behind a presigned GET URL (a design of a claim)."""
        response = await self.store().get(url)
        response.raise_for_status()
        return response.content

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self.http.aclose()
        if self._store is not None:
            await self._store.aclose()

    async def send(self, call: calls.Call[T]) -> T:
        """Send `call`, retrying what `policy` allows; its parsed answer or `ApiError`."""
        for attempt in itertools.count(1):
            try:
                response = await self.http.request(**call.request())
            except httpx.TransportError as exc:
                await asyncio.sleep(call.wait(attempt, self.retries, error=exc))
                continue
            if response.status_code < 400:
                return call.parse(response)
            await asyncio.sleep(call.wait(attempt, self.retries, response=response))
        raise AssertionError("unreachable")  # pragma: no cover

    async def upload_design_direct(
        self, session_id: str, content: bytes, *, filename: str, content_type: str
    ) -> DesignStored:
        """Send a design straight to the store (presigned POST), then confirm it."""
        request = DirectUploadRequest(
            filename=filename, content_type=content_type, size=len(content)
        )
        post = await self.send(calls.direct_upload(session_id, request))
        stored = await self.store().post(
            post.url, data=post.fields, files={"file": (filename, content, content_type)}
        )
        if (refusal := policy.store_refusal(stored)) is not None:
            raise ApiError(*refusal)
        return await self.send(calls.confirm_design(session_id, post.key))

"""Server-Sent Events fed by Redis pub/sub, one Redis connection per process.

Every SSE client of a process shares a single pub/sub connection: the hub subscribes a
channel when its first listener arrives, unsubscribes when the last leaves, and fans each
message out to per-listener queues. Without it every open stream would hold a connection
of the shared pool (50 by default), and a few dozen watchers would starve the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from starlette.responses import StreamingResponse

from templator.redis import RedisClient

log = logging.getLogger("templator.api.sse")

KEEP_ALIVE = b": keep-alive\n\n"
QUEUE_SIZE = 64
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of events: `state` first, then `progress` until a final status",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def encode_event(event: str, data: Any) -> bytes:
    """One SSE frame: `event: <name>` and a single-line JSON `data:`."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def event_stream(frames: AsyncIterator[bytes]) -> StreamingResponse:
    """The HTTP response for an SSE stream (no caching, no proxy buffering)."""
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


class Closed(Exception):
    """The hub lost Redis or shut down; the client should reconnect."""


class Listener:
    """One SSE client's view of a channel."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)

    def deliver(self, message: dict[str, Any] | None) -> None:
        if self.queue.full():
            # A slow client loses the oldest update; each message carries the whole state.
            self.queue.get_nowait()
        self.queue.put_nowait(message)

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None after `timeout` seconds of silence; Closed at the end."""
        try:
            message = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if message is None:
            raise Closed
        return message


class ProgressHub:
    """Fan-out of Redis pub/sub channels to any number of in-process listeners."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._pubsub: PubSub | None = None
        self._listeners: dict[str, set[Listener]] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    @property
    def channels(self) -> int:
        """How many channels are subscribed now."""
        return len(self._listeners)

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[Listener]:
        """Subscribe for the duration of the block (subscribed on entry, before any read)."""
        listener = Listener()
        async with self._lock:
            if self._pubsub is None:
                self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            if channel not in self._listeners:
                await self._pubsub.subscribe(channel)
                self._listeners[channel] = set()
            self._listeners[channel].add(listener)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(self._pubsub))
        try:
            yield listener
        finally:
            await self._leave(channel, listener)

    async def _leave(self, channel: str, listener: Listener) -> None:
        async with self._lock:
            listeners = self._listeners.get(channel)
            if listeners is None:
                return
            listeners.discard(listener)
            if not listeners:
                del self._listeners[channel]
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.unsubscribe(channel)

    async def _read(self, pubsub: PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                data: dict[str, Any] = orjson.loads(message["data"])
                for listener in tuple(self._listeners.get(name, ())):
                    listener.deliver(data)
        except asyncio.CancelledError:
            raise
        except Exception:  # any failure ends the streams; clients reconnect to a fresh hub
            log.warning("progress hub stopped; open streams end", exc_info=True)
            await self._drop_all(pubsub)

    async def _drop_all(self, pubsub: PubSub) -> None:
        async with self._lock:
            for listeners in self._listeners.values():
                for listener in listeners:
                    listener.deliver(None)
            self._listeners.clear()
            if self._pubsub is pubsub:
                self._pubsub = None
                self._reader = None
        with contextlib.suppress(RedisError, OSError):
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """End every stream and release the pub/sub connection (at shutdown)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        pubsub = self._pubsub
        if pubsub is not None:
            await self._drop_all(pubsub)

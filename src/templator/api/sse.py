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
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from templator.exceptions import TemplatorError
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


STREAM_RETRY_AFTER = 5
"""Seconds a client refused a stream waits before trying again."""


class TooManyStreams(TemplatorError):
    """The user holds as many open event streams on this worker as one may."""

    status_code = 429
    code = "too_many_streams"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"you already have {limit} live-progress streams open on this server "
            "(API_SSE_MAX_STREAMS_PER_USER): close one, or retry later"
        )
        self.headers = {"Retry-After": str(STREAM_RETRY_AFTER)}


class EventStreamResponse(StreamingResponse):
    """A streaming response that gives its stream slot back however it ends (finished,
    cancelled by a disconnect, or never started)."""

    def __init__(self, frames: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


def event_stream(
    frames: AsyncIterator[bytes], on_close: Callable[[], None] = lambda: None
) -> StreamingResponse:
    """The HTTP response for an SSE stream (no caching, no proxy buffering); `on_close`
    runs when it ends."""
    return EventStreamResponse(frames, on_close)


class StreamSlots:
    """How many event streams each user holds open in this process, capped per user."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._open: Counter[str] = Counter()

    def open(self, user_id: str) -> int:
        """Streams `user_id` holds open now."""
        return self._open[user_id]

    def take(self, user_id: str) -> Callable[[], None]:
        """Take one of the user's slots (TooManyStreams past the cap); returns the release,
        which may be called any number of times."""
        if self._open[user_id] >= self.per_user:
            raise TooManyStreams(self.per_user)
        self._open[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._open[user_id] -= 1
                if self._open[user_id] <= 0:
                    del self._open[user_id]

        return release


async def messages(
    listener: Listener,
    *,
    max_seconds: float,
    keep_alive: float,
    check_every: float,
    still_valid: Callable[[], Awaitable[bool]],
) -> AsyncIterator[dict[str, Any] | None]:
    """A listener's messages (None after each silence of `keep_alive` seconds, or up to the
    next check) for at most
    `max_seconds`; the stream ends early when the hub closes or when `still_valid` (asked
    every `check_every` seconds: the caller's token) says no, or fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    next_check = loop.time() + check_every
    while (now := loop.time()) < deadline:
        if now >= next_check:
            try:
                valid = await still_valid()
            except Exception:  # a store outage ends the stream: the client reconnects
                log.warning("could not re-check an event stream's token; it ends", exc_info=True)
                return
            if not valid:
                return
            next_check = loop.time() + check_every
            continue
        wait = max(0.0, min(keep_alive, deadline - now, next_check - now))
        try:
            message = await listener.next(wait)
        except Closed:
            return
        yield message


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

    def __init__(self, redis: RedisClient, *, streams_per_user: int = 10) -> None:
        self.redis = redis
        self.slots = StreamSlots(streams_per_user)
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

"""Live session progress over Redis pub/sub (published after each committed change)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from templator.redis import RedisClient


def channel(namespace: str, session_id: str) -> str:
    """The pub/sub channel of one session."""
    return f"{namespace}:session:{session_id}"


async def subscribe_progress(
    redis: RedisClient, namespace: str, session_id: str, *, timeout: float = 15.0
) -> AsyncIterator[dict[str, Any] | None]:
    """Yield each progress message of a session; None after `timeout` seconds of silence
    (a heartbeat for SSE). Stops after a final status."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel(namespace, session_id))
    loop = asyncio.get_running_loop()
    try:
        silent_since = loop.time()
        while True:
            # get_message also returns None for the subscribe confirmation: only a
            # whole `timeout` without a message counts as silence.
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            if message is None:
                if loop.time() - silent_since >= timeout:
                    silent_since = loop.time()
                    yield None
                continue
            silent_since = loop.time()
            data: dict[str, Any] = orjson.loads(message["data"])
            yield data
            if data.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
                return
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()  # type: ignore[no-untyped-call]

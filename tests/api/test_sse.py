"""Live progress over Server-Sent Events, fed by Redis pub/sub through one shared subscription."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from templator.api.sse import ProgressHub, StreamSlots, TooManyStreams, messages
from templator.kit.ids import new_id
from tests.api.conftest import LiveApi


async def test_listeners_of_a_channel_share_one_subscription(redis: Redis) -> None:
    hub = ProgressHub(redis)
    try:
        async with hub.listen("test:sse:a") as first, hub.listen("test:sse:a") as second:
            assert hub.channels == 1
            await redis.publish("test:sse:a", orjson.dumps({"progress": 0.5}))
            assert await first.next(5) == {"progress": 0.5}
            assert await second.next(5) == {"progress": 0.5}
        assert hub.channels == 0
    finally:
        await hub.close()


async def test_a_quiet_channel_yields_a_heartbeat(redis: Redis) -> None:
    hub = ProgressHub(redis)
    try:
        async with hub.listen("test:sse:quiet") as listener:
            assert await listener.next(0.2) is None
    finally:
        await hub.close()


async def _frames(response: httpx.Response) -> Any:
    """Yield (event, data) for each SSE frame, skipping keep-alive comments."""
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, orjson.loads(line.removeprefix("data: "))


async def test_progress_reaches_an_open_stream_until_completion(live_api: LiveApi) -> None:
    async with httpx.AsyncClient(base_url=live_api.url, headers=live_api.headers) as http:
        project = (await http.post("/api/v1/projects", json={"name": "SSE"})).json()["id"]
        sid = (await http.post("/api/v1/sessions", json={"project_id": project})).json()["id"]
        await http.post(f"/api/v1/sessions/{sid}/start")
        seen: list[tuple[str, dict[str, Any]]] = []

        async with http.stream("GET", f"/api/v1/sessions/{sid}/events", timeout=20) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            frames = _frames(stream)
            seen.append(await anext(frames))
            phase = {"phase": "ai_analysis", "payload": {"sections": 3}, "progress": 0.6}
            assert (await http.post(f"/api/v1/sessions/{sid}/phases", json=phase)).is_success
            seen.append(await asyncio.wait_for(anext(frames), 10))
            assert (await http.post(f"/api/v1/sessions/{sid}/complete", json={})).is_success
            async for frame in frames:  # the stream ends after the final status
                seen.append(frame)

        assert seen[0][0] == "state" and seen[0][1]["status"] == "PROCESSING"
        assert seen[1] == ("progress", seen[1][1]) and seen[1][1]["progress"] == 0.6
        assert seen[-1][0] == "progress" and seen[-1][1]["status"] == "COMPLETED"
        await http.delete(f"/api/v1/projects/{project}")


async def test_stream_of_an_unknown_session_is_404_and_needs_a_token(live_api: LiveApi) -> None:
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        response = await http.get(f"/api/v1/sessions/{new_id()}/events", headers=live_api.headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert (await http.get(f"/api/v1/sessions/{new_id()}/events")).status_code == 401


async def test_a_stream_ends_at_the_first_check_its_token_fails(redis: Redis) -> None:
    """Revoked, expired or erased: `still_valid` says no, and the stream ends there."""
    hub = ProgressHub(redis)
    checks: list[bool] = [True, False]

    async def still_valid() -> bool:
        return checks.pop(0)

    try:
        async with hub.listen("test:sse:check") as listener:
            stream = messages(
                listener, max_seconds=60, keep_alive=15, check_every=0.05, still_valid=still_valid
            )
            seen = [message async for message in stream]
    finally:
        await hub.close()
    assert checks == [] and all(message is None for message in seen)


async def test_a_failing_check_ends_the_stream_too(redis: Redis) -> None:
    hub = ProgressHub(redis)

    async def still_valid() -> bool:
        raise ConnectionError("PostgreSQL is down")

    try:
        async with hub.listen("test:sse:outage") as listener:
            stream = messages(
                listener, max_seconds=60, keep_alive=15, check_every=0.05, still_valid=still_valid
            )
            assert [m async for m in stream] == [None]
    finally:
        await hub.close()


def test_stream_slots_cap_each_user_and_come_back_once() -> None:
    slots = StreamSlots(per_user=2)
    first, _second = slots.take("u1"), slots.take("u1")
    with pytest.raises(TooManyStreams) as refused:
        slots.take("u1")
    assert refused.value.headers == {"Retry-After": "5"}
    assert slots.take("u2")  # another user is not affected
    first()
    first()  # releasing twice gives back one slot only
    assert slots.open("u1") == 1
    slots.take("u1")
    with pytest.raises(TooManyStreams):
        slots.take("u1")

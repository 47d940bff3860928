"""Live progress over Server-Sent Events, fed by Redis pub/sub through one shared subscription."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from templator.api.sse import ProgressHub
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

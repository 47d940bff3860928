"""The worker runtime on the real app: claims, heartbeats, outcomes, cancel and stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from templator.ai_session.schemas import AiSessionComplete, AiSessionCreate
from templator.client import ApiError, AsyncClient
from templator.client.worker import Job, RetryableError, Worker
from templator.models import SessionPhase, SessionStatus
from templator.project.schemas import ProjectCreate
from templator.template.schemas import TemplateOptions
from tests.support.factories import hubspot_config

RESULT = AiSessionComplete(
    final_result={
        "name": "M",
        "html": "<p>{{ module.heading }}</p>",
        "hubspot_config": hubspot_config(),
    },
    quality_score=0.5,
)


async def _ready_session(web: AsyncClient, **fields: object) -> str:
    project = await web.create_project(ProjectCreate(name="P"))
    session = await web.create_session(AiSessionCreate(project_id=project.id, **fields))  # type: ignore[arg-type]
    return session.id


def endless(started: asyncio.Event) -> Callable[[Job], Coroutine[Any, Any, AiSessionComplete]]:
    """A handler whose model call never ends (it sets `started` first)."""

    async def handler(job: Job) -> AiSessionComplete:
        started.set()
        await asyncio.Event().wait()
        return RESULT

    return handler


class Outcomes:
    """The worker's outcomes as they happen; `until` waits for a condition on them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def __call__(self, session_id: str, outcome: str) -> None:
        self.seen.append((session_id, outcome))
        self.changed.set()

    async def until(self, done: Callable[[list[tuple[str, str]]], bool]) -> None:
        while not done(self.seen):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=20)


async def _run_until(
    worker: Worker, outcomes: Outcomes, done: Callable[[list[tuple[str, str]]], bool]
) -> None:
    """Run the worker until `done(outcomes)`, each wait bounded in time."""
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await outcomes.until(done)
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=20)


async def test_a_session_is_worked_completed_and_made_a_template(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    sid = await _ready_session(web)

    async def handler(job: Job) -> AiSessionComplete:
        await job.phase(SessionPhase.UPLOAD, {"designs": len(job.claim.designs)}, 0.2)
        await job.log("uploaded", phase=SessionPhase.UPLOAD)
        return RESULT

    outcomes = Outcomes()
    worker = Worker(
        worker_client,
        handler,
        name="w1",
        wait=1,
        template=TemplateOptions(tags=["generated"]),
        on_outcome=outcomes,
    )
    await _run_until(worker, outcomes, lambda seen: (sid, "completed") in seen)
    session = await web.get_session(sid)
    assert session.status is SessionStatus.COMPLETED
    templates = (await web.project_templates(session.project_id)).items
    assert [(t.session_id, t.tags) for t in templates] == [(sid, ["generated"])]
    [attempt] = (await web.attempts(sid)).items
    assert (attempt.worker, attempt.outcome) == ("w1", "completed")


async def test_a_retryable_error_requeues_and_a_final_one_fails(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    retry = await _ready_session(web, max_attempts=2)
    final = await _ready_session(web)

    async def handler(job: Job) -> AiSessionComplete:
        if job.session_id == retry:
            raise RetryableError("model timed out")
        raise ValueError("design is unreadable")

    outcomes = Outcomes()
    worker = Worker(worker_client, handler, name="w2", wait=1, on_outcome=outcomes)
    await _run_until(
        worker, outcomes, lambda seen: {(retry, "retried"), (final, "failed")} <= set(seen)
    )
    requeued = await web.get_session(retry)
    assert requeued.status is SessionStatus.PENDING and requeued.next_attempt_at is not None
    [first] = (await web.attempts(retry)).items
    assert first.outcome == "retry" and first.error["message"] == "model timed out"
    failed = await web.get_session(final)
    assert failed.status is SessionStatus.FAILED
    assert (await web.attempts(final)).items[0].error["type"] == "ValueError"


async def test_a_cancelled_session_stops_its_handler(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    sid = await _ready_session(web)
    started = asyncio.Event()
    handler = endless(started)

    outcomes = Outcomes()
    worker = Worker(worker_client, handler, name="w3", wait=1, lease_seconds=5, on_outcome=outcomes)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 20)
    await web.cancel_session(sid)
    try:
        await outcomes.until(lambda seen: (sid, "cancelled") in seen)
    finally:
        stop.set()
        await asyncio.wait_for(running, 20)
    assert worker.stats.cancelled == 1
    assert (await web.get_session(sid)).status is SessionStatus.CANCELLED


async def test_stopping_releases_what_is_still_running(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    sid = await _ready_session(web)
    started = asyncio.Event()
    handler = endless(started)

    worker = Worker(worker_client, handler, name="w4", wait=1, grace=0)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 20)
    stop.set()
    stats = await asyncio.wait_for(running, 20)
    assert stats.released == 1
    back = await web.get_session(sid)
    assert back.status is SessionStatus.PENDING and back.worker is None
    assert (await web.attempts(sid)).items[0].outcome == "released"


async def test_a_busy_api_inside_the_handler_is_a_retryable_attempt(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    sid = await _ready_session(web)

    async def handler(job: Job) -> AiSessionComplete:
        raise ApiError(503, "busy", "no database connection became free in time")

    outcomes = Outcomes()
    worker = Worker(worker_client, handler, name="w5", wait=1, on_outcome=outcomes)
    await _run_until(worker, outcomes, lambda seen: (sid, "retried") in seen)
    assert (await web.get_session(sid)).status is SessionStatus.PENDING
    assert (await web.attempts(sid)).items[0].error["type"] == "ApiError"

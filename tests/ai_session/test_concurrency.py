"""Concurrent workers, the status cache and live progress, with real commits."""

from __future__ import annotations

import asyncio

import pytest

from templator.ai_session.errors import InvalidAiSessionTransition, ProgressWentBackwards
from templator.ai_session.events import channel
from templator.ai_session.schemas import AiSessionComplete, AiSessionCreate, PhaseUpdate
from templator.ai_session.service import AiSessionService
from templator.api.sse import ProgressHub
from templator.connections import Connections
from templator.kit.uow import unit_of_work
from templator.models import SessionPhase, SessionStatus
from tests.support.factories import Committed


async def _new_session(
    connections: Connections, committed: Committed, *, started: bool = True
) -> str:
    """A committed session, started (PROCESSING: phases are recorded) unless not `started`."""
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        service = AiSessionService(session, connections.cache)
        created = await service.create(
            committed.actor, AiSessionCreate(project_id=committed.project_id)
        )
        if started:
            await service.start(committed.actor, created.id)
    return created.id


async def test_racing_workers_never_lose_or_reverse_progress(
    connections: Connections, committed: Committed
) -> None:
    session_id = await _new_session(connections, committed)
    accepted: list[float] = []

    async def worker(values: list[float]) -> None:
        for value in values:
            try:
                async with unit_of_work(connections.sessionmaker, connections.cache) as session:
                    state = await AiSessionService(session, connections.cache).record_phase(
                        committed.actor,
                        session_id,
                        PhaseUpdate(
                            phase=SessionPhase.AI_ANALYSIS, payload={"v": value}, progress=value
                        ),
                    )
                accepted.append(state.progress)
            except ProgressWentBackwards:
                pass

    observed: list[float] = []
    done = asyncio.Event()

    async def observer() -> None:
        # Polls committed progress while the workers race: it must never go down.
        while not done.is_set():
            async with connections.sessionmaker() as session:
                full = await AiSessionService(session, connections.cache).get(
                    committed.actor, session_id
                )
            observed.append(full.progress)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(observer())
    await asyncio.gather(
        worker([i / 40 for i in range(0, 40, 2)]), worker([i / 40 for i in range(1, 40, 2)])
    )
    done.set()
    await watcher
    assert observed == sorted(observed) and len(observed) > 1
    async with connections.sessionmaker() as session:
        full = await AiSessionService(session, connections.cache).get(committed.actor, session_id)
    assert full.progress == max(accepted)
    assert full.ai_analysis == {"v": max(accepted)}


async def test_exactly_one_terminal_transition_wins(
    connections: Connections, committed: Committed
) -> None:
    session_id = await _new_session(connections, committed, started=False)
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        await AiSessionService(session, connections.cache).start(committed.actor, session_id)

    async def finish(kind: str) -> str:
        try:
            async with unit_of_work(connections.sessionmaker, connections.cache) as session:
                service = AiSessionService(session, connections.cache)
                if kind == "complete":
                    await service.complete(committed.actor, session_id, AiSessionComplete())
                else:
                    await service.cancel(committed.actor, session_id)
        except InvalidAiSessionTransition:
            return "refused"
        return kind

    results = await asyncio.gather(*(finish(k) for k in ["complete", "cancel"] * 4))
    winners = [r for r in results if r != "refused"]
    assert len(winners) == 1
    async with connections.sessionmaker() as session:
        state = await AiSessionService(session, connections.cache).get(committed.actor, session_id)
    assert state.status is (
        SessionStatus.COMPLETED if winners[0] == "complete" else SessionStatus.CANCELLED
    )


async def test_cached_state_is_never_stale_after_interleaved_writes(
    connections: Connections, committed: Committed
) -> None:
    session_id = await _new_session(connections, committed)

    async def read() -> float:
        async with connections.sessionmaker() as session:
            return (
                await AiSessionService(session, connections.cache).get_state(
                    committed.actor, session_id
                )
            ).progress

    async def write(value: float) -> None:
        async with unit_of_work(connections.sessionmaker, connections.cache) as session:
            await AiSessionService(session, connections.cache).record_phase(
                committed.actor,
                session_id,
                PhaseUpdate(phase=SessionPhase.UPLOAD, payload={}, progress=value),
            )

    for step in range(1, 11):
        await asyncio.gather(write(step / 10), *(read() for _ in range(5)))
        assert await read() == step / 10, "a read after a committed write returned stale data"
    assert connections.cache.stats.hits > 0


async def test_progress_is_published_after_commit(
    connections: Connections, committed: Committed
) -> None:
    session_id = await _new_session(connections, committed)
    received: list[dict[str, object]] = []

    hub = ProgressHub(connections.redis)

    async def listen() -> None:
        async with hub.listen(channel(connections.settings.cache_namespace, session_id)) as sub:
            subscribed.set()
            while (message := await sub.next(5)) is not None:
                received.append(message)
                if message["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    return

    subscribed = asyncio.Event()
    listener = asyncio.create_task(listen())
    await asyncio.wait_for(subscribed.wait(), 10)
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        service = AiSessionService(session, connections.cache)
        await service.record_phase(
            committed.actor,
            session_id,
            PhaseUpdate(phase=SessionPhase.UPLOAD, payload={}, progress=0.5),
        )
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        await AiSessionService(session, connections.cache).complete(
            committed.actor, session_id, AiSessionComplete()
        )
    await asyncio.wait_for(listener, 10)
    await hub.close()
    assert [(m["status"], m["progress"]) for m in received] == [
        ("PROCESSING", 0.5),
        ("COMPLETED", 1.0),
    ]


@pytest.mark.parametrize("rounds", [3])
async def test_nothing_is_published_for_a_rolled_back_change(
    connections: Connections, committed: Committed, rounds: int
) -> None:
    session_id = await _new_session(connections, committed)
    pubsub = connections.redis.pubsub()
    await pubsub.subscribe(f"{connections.settings.cache_namespace}:session:{session_id}")
    await pubsub.get_message(timeout=1)
    for _ in range(rounds):
        with pytest.raises(RuntimeError):
            async with unit_of_work(connections.sessionmaker, connections.cache) as session:
                await AiSessionService(session, connections.cache).record_phase(
                    committed.actor,
                    session_id,
                    PhaseUpdate(phase=SessionPhase.UPLOAD, payload={}, progress=0.3),
                )
                raise RuntimeError("worker crashed before commit")
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5) is None
    await pubsub.aclose()

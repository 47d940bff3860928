"""/api/v1/work: claim sessions (long poll), heartbeat and release leases; a session's
attempts."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from templator.ai_session.errors import (
    LEASE_ERRORS,
    AiSessionChangedConcurrently,
    AiSessionFinished,
    AiSessionNotFound,
    AiSessionPayloadTooLarge,
    InvalidAiSessionTransition,
)
from templator.ai_session.lifecycle import RetryPolicy
from templator.ai_session.schemas import AiSession
from templator.api.deps import (
    Conns,
    CurrentActor,
    DbSession,
    DbStatement,
    LeaseToken,
    StatementUow,
)
from templator.api.problems import responses_for
from templator.kit.validation import IdPath
from templator.project.errors import ProjectNotFound
from templator.work import schemas
from templator.work.errors import WorkerScopeRequired
from templator.work.service import WorkService, require_worker
from templator.work.wakeup import WorkSignal

router = APIRouter(tags=["work"])
HELD = responses_for(AiSessionNotFound, AiSessionFinished, WorkerScopeRequired, *LEASE_ERRORS)


async def _work(session: DbSession, conns: Conns) -> WorkService:
    """The WorkService of this request's unit of work."""
    return WorkService(session, conns.cache, conns.store)


Work = Annotated[WorkService, Depends(_work)]
"""WorkService, built at the edge for each request (on its DbSession, committed by it)."""


async def _heartbeats(session: DbStatement, conns: Conns) -> WorkService:
    """The WorkService of a heartbeat: one UPDATE, committed by itself (`DbStatement`)."""
    return WorkService(session, conns.cache, conns.store)


Heartbeats = Annotated[WorkService, Depends(_heartbeats)]


@router.post("/work/claim", responses=responses_for(WorkerScopeRequired))
async def claim(
    data: schemas.ClaimRequest,
    actor: CurrentActor,
    conns: Conns,
    uow: StatementUow,
    request: Request,
) -> schemas.ClaimList:
    """Take up to `limit` ready sessions, fairly across users, each under a lease; with
    `wait`, wait that long for one to become ready (woken by NOTIFY, not polling)."""
    # Each claim is one statement, committed by itself (no BEGIN/COMMIT round trips); the
    # designs' read and the rescue after it need no transaction with it. A claim whose
    # answer is lost leaves its leases to expire and be rescued, as a worker that died.
    require_worker(actor)
    signal: WorkSignal = request.app.state.work_signal
    loop = asyncio.get_running_loop()
    deadline = loop.time() + data.wait
    retry = RetryPolicy.from_settings(conns.settings)
    while True:
        generation = signal.generation
        async with uow() as session:
            service = WorkService(session, conns.cache, conns.store)
            claims = await service.claim(actor, data)
            if len(claims) < data.limit:
                await service.rescue(retry)
        left = deadline - loop.time()
        if claims or left <= 0:
            return schemas.ClaimList(items=claims)
        await signal.wait_past(generation, left)
        if await request.is_disconnected():
            return schemas.ClaimList(items=[])


@router.post("/work/{session_id}/heartbeat", responses=HELD)
async def heartbeat(
    session_id: IdPath,
    actor: CurrentActor,
    service: Heartbeats,
    lease: LeaseToken = None,
    data: Annotated[schemas.HeartbeatRequest | None, Body()] = None,
) -> schemas.Heartbeat:
    """Extend the lease by `lease_seconds`; `cancelled: true` tells the worker to stop."""
    require_worker(actor)
    held = WorkService.held(session_id, lease)
    return await service.heartbeat(actor, held, data or schemas.HeartbeatRequest())


@router.post("/work/{session_id}/release", responses=HELD)
async def release(
    session_id: IdPath,
    actor: CurrentActor,
    service: Work,
    lease: LeaseToken = None,
) -> AiSession:
    """Give the session back to the queue at once (a worker shutting down); the attempt
    does not count against max_attempts."""
    require_worker(actor)
    held = WorkService.held(session_id, lease)
    return await service.release(actor, held)


@router.post(
    "/work/{session_id}/complete",
    responses=responses_for(
        AiSessionNotFound,
        WorkerScopeRequired,
        InvalidAiSessionTransition,
        AiSessionChangedConcurrently,
        AiSessionPayloadTooLarge,
        ProjectNotFound,
        *LEASE_ERRORS,
    ),
)
async def complete(
    session_id: IdPath,
    data: schemas.WorkComplete,
    actor: CurrentActor,
    service: Work,
    lease: LeaseToken = None,
) -> schemas.WorkCompleted:
    """PROCESSING → COMPLETED under the lease and, with `template`, the template made of
    the session's final result, in one transaction (both or neither). A repeat under the
    same lease (its answer was lost) answers the same session and template again."""
    return await service.complete(actor, session_id, data, lease=lease)


@router.get("/sessions/{session_id}/attempts", responses=responses_for(AiSessionNotFound))
async def attempts(session_id: IdPath, actor: CurrentActor, service: Work) -> schemas.AttemptList:
    """Every claim of the session: worker, times, outcome and error, oldest first."""
    return await service.attempts(actor, session_id)

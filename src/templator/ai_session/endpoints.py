"""/api/v1/sessions: lifecycle and live progress (SSE); their logs: processing_log/endpoints.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from starlette.responses import StreamingResponse

from templator.ai_session import schemas
from templator.ai_session.errors import (
    LEASE_ERRORS,
    AiSessionChangedConcurrently,
    AiSessionFinished,
    AiSessionNotFound,
    AiSessionPayloadTooLarge,
    InvalidAiSessionTransition,
    PhaseWentBackwards,
    ProgressWentBackwards,
    SessionNotDraft,
)
from templator.ai_session.events import channel
from templator.ai_session.lifecycle import RetryPolicy
from templator.ai_session.service import AiSessionService
from templator.api.deps import (
    BearerToken,
    Conns,
    CurrentActor,
    DbSession,
    DbStatement,
    Hub,
    LeaseToken,
    Uow,
    origin,
    token_checker,
)
from templator.api.idempotency import IDEMPOTENT_ERRORS, Idempotent
from templator.api.pagination import PageOut, Paging, to_page_out
from templator.api.problems import responses_for
from templator.api.sse import (
    KEEP_ALIVE,
    SSE_RESPONSE,
    TooManyStreams,
    encode_event,
    event_stream,
    messages,
)
from templator.kit.validation import IdPath
from templator.models.enums import SessionStatus
from templator.project.errors import ProjectNotFound

router = APIRouter(tags=["sessions"])


async def _sessions(session: DbSession, conns: Conns) -> AiSessionService:
    """The AiSessionService of this request's unit of work."""
    return AiSessionService(session, conns.cache, conns.store)


Sessions = Annotated[AiSessionService, Depends(_sessions)]
"""AiSessionService, built at the edge for each request (on its DbSession, committed by it)."""


async def _one_write(session: DbStatement, conns: Conns) -> AiSessionService:
    """The AiSessionService of an endpoint whose write is one statement (`DbStatement`)."""
    return AiSessionService(session, conns.cache, conns.store)


OneWrite = Annotated[AiSessionService, Depends(_one_write)]
"""AiSessionService for a worker's one-statement writes: phase, complete, fail."""
CHANGE = responses_for(AiSessionNotFound, InvalidAiSessionTransition)
FINISH = responses_for(
    AiSessionNotFound, InvalidAiSessionTransition, AiSessionPayloadTooLarge, *LEASE_ERRORS
)


FINAL = (SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED)
FINAL_NAMES = {status.value for status in FINAL}
KEEP_ALIVE_SECONDS = 15.0
"""An EventSource reconnects by itself; a bounded stream frees idle watchers."""


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(ProjectNotFound, AiSessionPayloadTooLarge, *IDEMPOTENT_ERRORS),
)
async def create_session(
    data: schemas.AiSessionCreate, actor: CurrentActor, service: Sessions, idem: Idempotent
) -> schemas.AiSession:
    """A new PENDING session in one of the caller's projects."""
    return await idem.done(await service.create(actor, data))


@router.post(
    "/sessions/{session_id}/submit",
    responses=responses_for(AiSessionNotFound, SessionNotDraft),
)
async def submit(session_id: IdPath, actor: CurrentActor, service: Sessions) -> schemas.AiSession:
    """A draft becomes ready: workers may claim it (upload its designs before)."""
    return await service.submit(actor, session_id)


@router.get("/projects/{project_id}/sessions", responses=responses_for(ProjectNotFound))
async def list_sessions(
    project_id: IdPath, actor: CurrentActor, service: Sessions, paging: Paging
) -> PageOut[schemas.AiSession]:
    """A project's sessions, newest first."""
    return to_page_out(await service.list_for_project(actor, project_id, paging))


@router.get("/sessions/{session_id}", responses=responses_for(AiSessionNotFound))
async def get_session(
    session_id: IdPath, actor: CurrentActor, service: Sessions
) -> schemas.AiSession:
    """A whole session with its phase payloads."""
    return await service.get(actor, session_id)


@router.get("/sessions/{session_id}/state", responses=responses_for(AiSessionNotFound))
async def get_state(
    session_id: IdPath, actor: CurrentActor, service: Sessions
) -> schemas.AiSessionState:
    """Status and progress (cached)."""
    return await service.get_state(actor, session_id)


@router.post(
    "/sessions/{session_id}/phases",
    responses=responses_for(
        AiSessionNotFound,
        AiSessionFinished,
        PhaseWentBackwards,
        AiSessionChangedConcurrently,
        ProgressWentBackwards,
        AiSessionPayloadTooLarge,
        InvalidAiSessionTransition,
        *LEASE_ERRORS,
    ),
)
async def record_phase(
    session_id: IdPath,
    data: schemas.PhaseUpdate,
    actor: CurrentActor,
    service: OneWrite,
    lease: LeaseToken = None,
) -> schemas.AiSessionState:
    """Record a phase's output and the progress reached (never backwards) on a PROCESSING
    session; the upload phase's payload is added under the web app's input_data."""
    return await service.record_phase(actor, session_id, data, lease=lease)


@router.post("/sessions/{session_id}/start", responses=CHANGE)
async def start(
    session_id: IdPath, actor: CurrentActor, service: Sessions
) -> schemas.AiSessionState:
    """PENDING → PROCESSING."""
    return await service.start(actor, session_id)


@router.post("/sessions/{session_id}/complete", responses=FINISH)
async def complete(
    session_id: IdPath,
    data: schemas.AiSessionComplete,
    actor: CurrentActor,
    service: OneWrite,
    lease: LeaseToken = None,
) -> schemas.AiSessionState:
    """PROCESSING → COMPLETED."""
    return await service.complete(actor, session_id, data, lease=lease)


@router.post("/sessions/{session_id}/fail", responses=FINISH)
async def fail(
    session_id: IdPath,
    data: schemas.AiSessionFail,
    actor: CurrentActor,
    service: OneWrite,
    conns: Conns,
    lease: LeaseToken = None,
) -> schemas.AiSessionState:
    """PENDING | PROCESSING → FAILED; a retryable failure of a leased attempt with attempts
    left goes back to PENDING after a backoff instead."""
    return await service.fail(
        actor, session_id, data, retry=RetryPolicy.from_settings(conns.settings), lease=lease
    )


@router.post("/sessions/{session_id}/cancel", responses=CHANGE)
async def cancel(
    session_id: IdPath, actor: CurrentActor, service: Sessions
) -> schemas.AiSessionState:
    """PENDING | PROCESSING → CANCELLED."""
    return await service.cancel(actor, session_id)


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses_for(AiSessionNotFound),
)
async def delete_session(
    session_id: IdPath, actor: CurrentActor, service: Sessions, request: Request
) -> None:
    """Delete a session, its logs and its stored objects (templates made from it stay; audited)."""
    await service.delete(actor, session_id, origin=origin(request, actor))


@router.get(
    "/sessions/{session_id}/events",
    responses={**SSE_RESPONSE, **responses_for(AiSessionNotFound, TooManyStreams)},
)
async def events(
    session_id: IdPath, actor: CurrentActor, token: BearerToken, conns: Conns, uow: Uow, hub: Hub
) -> StreamingResponse:
    """Live progress (Server-Sent Events): the state now, then every change until the end
    (or until the token is revoked or expires); 429 past API_SSE_MAX_STREAMS_PER_USER."""
    async with uow() as session:
        await AiSessionService(session, conns.cache).get_state(actor, session_id)
    release = hub.slots.take(actor.id)
    conf = conns.settings

    async def frames() -> AsyncIterator[bytes]:
        # Subscribe before reading the state, so no change falls between the two.
        async with hub.listen(channel(conf.cache_namespace, session_id)) as listener:
            async with uow() as session:
                state = await AiSessionService(session, conns.cache).get_state(actor, session_id)
            yield encode_event("state", state.model_dump(mode="json"))
            if state.status in FINAL:
                return
            async for message in messages(
                listener,
                max_seconds=conf.api_sse_max_seconds,
                keep_alive=KEEP_ALIVE_SECONDS,
                check_every=conf.api_sse_auth_check_seconds,
                still_valid=token_checker(conns, token),
            ):
                if message is None:
                    yield KEEP_ALIVE
                    continue
                yield encode_event("progress", message)
                if message.get("status") in FINAL_NAMES:
                    return

    return event_stream(frames(), on_close=release)

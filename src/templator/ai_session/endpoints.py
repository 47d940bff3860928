"""/api/v1/sessions: lifecycle, logs, live progress (SSE) and design uploads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, File, Form, Query, UploadFile, status
from pydantic import BaseModel
from starlette.responses import StreamingResponse

from templator.ai_session import schemas
from templator.ai_session.events import subscribe_progress
from templator.ai_session.service import SessionService
from templator.api.deps import Conns, CurrentActor, Uow
from templator.api.pages import PageOut, Paging, to_page_out
from templator.api.problems import responses_for
from templator.kit.validation import IdPath
from templator.models.enums import LogLevel
from templator.processing_log import schemas as log_schemas
from templator.processing_log.service import LogService
from templator.storage.assets import AssetService
from templator.template.service import TemplateService

router = APIRouter(tags=["sessions"])
CHANGE = responses_for(401, 404, 409, 422)


class DesignStored(BaseModel):
    """Where an uploaded design was stored."""

    key: str
    size: int
    content_type: str


@router.post(
    "/sessions", status_code=status.HTTP_201_CREATED, responses=responses_for(401, 404, 413, 422)
)
async def create_session(
    data: schemas.SessionCreate, actor: CurrentActor, conns: Conns, uow: Uow
) -> schemas.Session:
    """A new PENDING session in one of the caller's projects."""
    async with uow() as session:
        return await SessionService(session, conns.cache).create(actor, data)


@router.get("/projects/{project_id}/sessions", responses=responses_for(401, 404, 422))
async def list_sessions(
    project_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow, paging: Paging
) -> PageOut[schemas.Session]:
    """A project's sessions, newest first."""
    async with uow() as session:
        return to_page_out(
            await SessionService(session, conns.cache).list_for_project(actor, project_id, paging)
        )


@router.get("/sessions/{session_id}", responses=responses_for(401, 404))
async def get_session(
    session_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow
) -> schemas.Session:
    """A whole session with its phase payloads."""
    async with uow() as session:
        return await SessionService(session, conns.cache).get(actor, session_id)


@router.get("/sessions/{session_id}/state", responses=responses_for(401, 404))
async def get_state(
    session_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow
) -> schemas.SessionState:
    """Status and progress (cached)."""
    async with uow() as session:
        return await SessionService(session, conns.cache).get_state(actor, session_id)


@router.post("/sessions/{session_id}/phases", responses=responses_for(401, 404, 409, 413, 422))
async def record_phase(
    session_id: IdPath, data: schemas.PhaseUpdate, actor: CurrentActor, conns: Conns, uow: Uow
) -> schemas.SessionState:
    """Record a phase's output and the progress reached (never backwards)."""
    async with uow() as session:
        return await SessionService(session, conns.cache).record_phase(actor, session_id, data)


@router.post("/sessions/{session_id}/start", responses=CHANGE)
async def start(
    session_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow
) -> schemas.SessionState:
    """PENDING → PROCESSING."""
    async with uow() as session:
        return await SessionService(session, conns.cache).start(actor, session_id)


@router.post("/sessions/{session_id}/complete", responses=responses_for(401, 404, 409, 413, 422))
async def complete(
    session_id: IdPath, data: schemas.SessionComplete, actor: CurrentActor, conns: Conns, uow: Uow
) -> schemas.SessionState:
    """PROCESSING → COMPLETED."""
    async with uow() as session:
        return await SessionService(session, conns.cache).complete(actor, session_id, data)


@router.post("/sessions/{session_id}/fail", responses=responses_for(401, 404, 409, 413, 422))
async def fail(
    session_id: IdPath, data: schemas.SessionFail, actor: CurrentActor, conns: Conns, uow: Uow
) -> schemas.SessionState:
    """PENDING | PROCESSING → FAILED."""
    async with uow() as session:
        return await SessionService(session, conns.cache).fail(actor, session_id, data)


@router.post("/sessions/{session_id}/cancel", responses=CHANGE)
async def cancel(
    session_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow
) -> schemas.SessionState:
    """PENDING | PROCESSING → CANCELLED."""
    async with uow() as session:
        return await SessionService(session, conns.cache).cancel(actor, session_id)


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses_for(401, 404),
)
async def delete_session(session_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow) -> None:
    """Delete a session, its logs and its stored objects (templates made from it stay)."""
    async with uow() as session:
        await AssetService(
            session, conns.store, TemplateService(session, conns.cache)
        ).delete_session(actor, session_id)


@router.post(
    "/sessions/{session_id}/logs",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(401, 404, 413, 422),
)
async def append_logs(
    session_id: IdPath, data: log_schemas.LogBatch, actor: CurrentActor, uow: Uow
) -> dict[str, int]:
    """Append up to 10,000 log lines in one round trip."""
    async with uow() as session:
        return {"appended": await LogService(session).append_many(actor, session_id, data.lines)}


@router.get("/sessions/{session_id}/logs", responses=responses_for(401, 404, 422))
async def read_logs(
    session_id: IdPath,
    actor: CurrentActor,
    uow: Uow,
    paging: Paging,
    level: Annotated[list[LogLevel] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> PageOut[log_schemas.ProcessingLog]:
    """A session's log, newest first, filtered by level(s) and time range."""
    query = log_schemas.LogQuery(levels=level, since=since, until=until)
    async with uow() as session:
        return to_page_out(await LogService(session).query(actor, session_id, query, paging))


@router.get(
    "/sessions/{session_id}/events",
    responses={
        **responses_for(401, 404),
        200: {"content": {"text/event-stream": {}}, "description": "Progress events"},
    },
)
async def events(
    session_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow
) -> StreamingResponse:
    """Live progress (Server-Sent Events): the state now, then every change until the end."""
    async with uow() as session:
        state = await SessionService(session, conns.cache).get_state(actor, session_id)

    async def stream() -> AsyncIterator[bytes]:
        yield b"event: state\ndata: " + orjson.dumps(state.model_dump(mode="json")) + b"\n\n"
        if state.status.value in ("COMPLETED", "FAILED", "CANCELLED"):
            return
        async for message in subscribe_progress(
            conns.redis, conns.settings.cache_namespace, session_id
        ):
            if message is None:
                yield b": keep-alive\n\n"
                continue
            yield b"event: progress\ndata: " + orjson.dumps(message) + b"\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
    )


@router.post(
    "/sessions/{session_id}/designs",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(401, 404, 413, 415, 422, 503),
)
async def upload_design(
    session_id: IdPath,
    actor: CurrentActor,
    conns: Conns,
    uow: Uow,
    file: Annotated[UploadFile, File(description="The design: jpeg, png, gif, webp, html or json")],
    content_type: Annotated[str | None, Form(max_length=100)] = None,
) -> DesignStored:
    """Upload a design file into the object store (size limit and type checked before storing)."""
    declared = content_type or file.content_type or "application/octet-stream"
    async with uow() as session:
        stored = await AssetService(
            session, conns.store, TemplateService(session, conns.cache)
        ).upload_design(
            actor, session_id, file.file, content_type=declared, declared_size=file.size
        )
    return DesignStored(key=stored.key, size=stored.size, content_type=stored.content_type)

"""/api/v1/sessions/{id}/logs: a session's processing log, appended in batches and read back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from templator.ai_session.errors import LEASE_ERRORS, AiSessionNotFound
from templator.ai_session.service import AiSessionService
from templator.api.deps import Conns, CurrentActor, DbSession, DbStatement, LeaseToken
from templator.api.pagination import PageOut, Paging, to_page_out
from templator.api.problems import responses_for
from templator.kit.validation import IdPath, StorableDatetime
from templator.models.enums import LogLevel
from templator.processing_log import schemas as log_schemas
from templator.processing_log.errors import LogBatchTooLarge, LogLineTooLarge
from templator.processing_log.service import LogService

router = APIRouter(tags=["sessions"])


async def _logs(session: DbSession, conns: Conns) -> LogService:
    """The LogService of this request's unit of work."""
    return LogService(session, conns.cache)


Logs = Annotated[LogService, Depends(_logs)]
"""LogService, built at the edge for each request (on its DbSession, committed by it)."""


async def _appends(session: DbStatement, conns: Conns) -> LogService:
    """The LogService of an append: one INSERT (or one COPY), committed by itself."""
    return LogService(session, conns.cache)


Appends = Annotated[LogService, Depends(_appends)]


@router.post(
    "/sessions/{session_id}/logs",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(AiSessionNotFound, LogBatchTooLarge, LogLineTooLarge, *LEASE_ERRORS),
)
async def append_logs(
    session_id: IdPath,
    data: log_schemas.LogBatch,
    actor: CurrentActor,
    service: Appends,
    conns: Conns,
    lease: LeaseToken = None,
) -> dict[str, int]:
    """Append up to 10,000 log lines in one round trip (under the session's lease when a
    worker holds it)."""
    # The lease check is a read and the append one statement: no transaction is needed
    # around them (READ COMMITTED would not hold the lease between them either).
    await AiSessionService(service.session, conns.cache).ensure_lease(actor, session_id, lease)
    return {"appended": await service.append_many(actor, session_id, data.lines)}


@router.get("/sessions/{session_id}/logs", responses=responses_for(AiSessionNotFound))
async def read_logs(
    session_id: IdPath,
    actor: CurrentActor,
    service: Logs,
    paging: Paging,
    level: Annotated[list[LogLevel] | None, Query()] = None,
    since: Annotated[StorableDatetime | None, Query()] = None,
    until: Annotated[StorableDatetime | None, Query()] = None,
) -> PageOut[log_schemas.ProcessingLog]:
    """A session's log, newest first, filtered by level(s) and time range."""
    query = log_schemas.LogQuery(levels=level, since=since, until=until)
    page = await service.query(actor, session_id, query, paging)
    return to_page_out(page)

"""All SQL about AI sessions: raw psycopg on the session's own connection (hot paths).

Every state change is ONE conditional UPDATE … WHERE <the rule holds> … RETURNING.
PostgreSQL re-checks the WHERE clause against the newest row version when two workers
race, so a lost update, a backward step of progress, or two winners of a terminal
transition are impossible without holding explicit locks across round trips. A change
that matched nothing returns None; the service decides which error that was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session import lifecycle, schemas
from templator.ai_session.events import WORK_CHANNEL
from templator.ai_session.lease import LeaseView
from templator.config import Settings
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.kit.raw import driver_connection
from templator.models import AISession, Project
from templator.models.enums import SessionPhase, SessionStatus

_PHASES = "ARRAY['upload','section_detection','ai_analysis','suggestions','generation']"
_STATE = "id, status, phase, progress, updated_at"
# A write of a worker's goes through only under the session's live lease; a session nobody
# holds takes its owner's writes without one (ai_session/lease.py says why one was refused).
_LEASE_HOLDS = (
    "((%(lease)s::text IS NULL AND lease_hash IS NULL AND NOT %(worker)s) "
    "OR (lease_hash = %(lease)s AND lease_expires_at > now()))"
)
_OWNED = "id = %(id)s AND (user_id = %(actor)s OR %(admin)s)"


def _phase_assignment(column: str) -> str:
    if column == "input_data":
        # The upload phase adds to the web app's input_data; the web app's keys win.
        return (
            "input_data = CASE WHEN %(payload)s::jsonb IS NULL THEN input_data "
            "ELSE %(payload)s::jsonb || COALESCE(input_data, '{}'::jsonb) END, "
        )
    return f"{column} = %(payload)s::jsonb, "


_RECORD_PHASE = {
    column: (
        f"UPDATE ai_sessions SET {_phase_assignment(column)}phase = %(phase)s, "
        "progress = %(progress)s "
        f"WHERE {_OWNED} AND status = 'PROCESSING' AND progress <= %(progress)s "
        f"AND array_position({_PHASES}, phase) <= array_position({_PHASES}, %(phase)s::text) "
        f"AND {_LEASE_HOLDS} RETURNING {_STATE}"
    )
    for column in lifecycle.PHASE_COLUMN.values()
}


def _ending_attempt(outcome: str, *, error: bool = False) -> str:
    """A CTE `ended` closing the running attempt of the session `done` returned."""
    return (
        f"ended AS (UPDATE session_attempts a SET outcome = {outcome}, ended_at = now()"
        f"{', error = %(error)s::jsonb' if error else ''} "
        "FROM done WHERE a.session_id = done.id AND a.outcome = 'running') "
    )


_COMPLETE = (
    "WITH done AS (UPDATE ai_sessions SET status = 'COMPLETED', progress = 1, "
    "phase = 'generation', final_result = COALESCE(%(final)s::jsonb, final_result), "
    "quality_score = COALESCE(%(quality)s, quality_score), finished_at = now(), "
    "lease_expires_at = NULL, "
    "processing_time = (extract(epoch FROM now() - COALESCE(started_at, created_at)) * 1000)::int "
    f"WHERE {_OWNED} AND status = 'PROCESSING' AND {_LEASE_HOLDS} RETURNING {_STATE}), "
    + _ending_attempt("'completed'")
    + f"SELECT {_STATE} FROM done"
)
# A retryable failure of a leased attempt with attempts left goes back to the queue.
_RETRY = (
    "(%(retryable)s AND status = 'PROCESSING' AND lease_hash IS NOT NULL "
    "AND attempt < max_attempts)"
)
_FAIL = (
    "WITH done AS (UPDATE ai_sessions SET "
    f"status = (CASE WHEN {_RETRY} THEN 'PENDING' ELSE 'FAILED' END)::session_status, "
    f"finished_at = CASE WHEN {_RETRY} THEN NULL ELSE now() END, "
    f"next_attempt_at = CASE WHEN {_RETRY} THEN now() + "
    f"{lifecycle.retry_delay_sql('attempt')} END, "
    f"worker = CASE WHEN {_RETRY} THEN NULL ELSE worker END, "
    f"lease_hash = CASE WHEN {_RETRY} THEN NULL ELSE lease_hash END, "
    "lease_expires_at = NULL, error_log = COALESCE(%(error)s::jsonb, error_log) "
    f"WHERE {_OWNED} AND status = ANY(%(sources)s::session_status[]) AND {_LEASE_HOLDS} "
    f"RETURNING {_STATE}), "
    + _ending_attempt(
        "CASE WHEN done.status = 'PENDING' THEN 'retry' ELSE 'failed' END", error=True
    )
    + f"SELECT {_STATE} FROM done"
)
_CANCEL = (
    "WITH done AS (UPDATE ai_sessions SET status = 'CANCELLED', finished_at = now(), "
    "lease_expires_at = NULL "
    f"WHERE {_OWNED} AND status = ANY(%(sources)s::session_status[]) RETURNING {_STATE}), "
    + _ending_attempt("'cancelled'")
    + f"SELECT {_STATE} FROM done"
)
_START = (
    "UPDATE ai_sessions SET status = 'PROCESSING', started_at = COALESCE(started_at, now()) "
    f"WHERE {_OWNED} AND status = 'PENDING' RETURNING {_STATE}"
)
_LEASE_VIEW = (
    "SELECT user_id, status, lease_hash, lease_expires_at <= now(), EXISTS (SELECT FROM "
    "session_attempts a WHERE a.session_id = s.id AND a.lease_hash = %(lease)s) "
    "FROM ai_sessions s WHERE id = %(id)s"
)
_READ_STATE = f"SELECT {_STATE}, user_id FROM ai_sessions WHERE id = %s"
_SESSION_FIELDS = list(schemas.AiSession.model_fields)
_FIELDS = ", ".join(_SESSION_FIELDS)
# pg_notify in the same transaction: the waiting claims wake when it commits, not before.
_WAKE = (
    "woken AS (SELECT pg_notify(%(channel)s, '') FROM changed WHERE changed.ready_at IS NOT NULL) "
    "SELECT changed.* FROM changed LEFT JOIN woken ON true"
)
_CREATE = (
    "WITH changed AS (INSERT INTO ai_sessions "
    "(id, project_id, user_id, input_data, ready_at, priority, max_attempts) "
    "SELECT %(id)s, p.id, p.user_id, %(input)s::jsonb, "
    "CASE WHEN %(draft)s THEN NULL ELSE now() END, %(priority)s, %(max_attempts)s "
    "FROM projects p WHERE p.id = %(project)s AND (p.user_id = %(actor)s OR %(admin)s) "
    f"RETURNING {_FIELDS}), {_WAKE}"
)
_SUBMIT = (
    "WITH changed AS (UPDATE ai_sessions SET ready_at = now() "
    f"WHERE {_OWNED} AND status = 'PENDING' AND ready_at IS NULL RETURNING {_FIELDS}), {_WAKE}"
)
_RESULT = (
    "SELECT user_id, project_id, status, final_result, quality_score FROM ai_sessions WHERE id = %s"
)


@dataclass(frozen=True, slots=True)
class Fence:
    """Who writes and under which lease (the hash of the `Lease-Token` sent, if any)."""

    actor_id: str
    admin: bool
    worker: bool
    lease_hash: str | None

    def params(self) -> dict[str, Any]:
        """The statement parameters of `_OWNED` and `_LEASE_HOLDS`."""
        return {
            "actor": self.actor_id,
            "admin": self.admin,
            "worker": self.worker,
            "lease": self.lease_hash,
        }


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The backoff before a retry (settings WORK_RETRY_BASE_SECONDS / _MAX_SECONDS)."""

    base_seconds: float
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the settings configure."""
        return cls(settings.work_retry_base_seconds, settings.work_retry_max_seconds)


class OwnedState(NamedTuple):
    """A session's status and progress, with the user owning it."""

    state: schemas.AiSessionState
    user_id: str


class AiSessionResult(NamedTuple):
    """What a template is made from: a session's owner, project, status and result."""

    user_id: str
    project_id: str
    status: str
    final_result: dict[str, Any] | None
    quality_score: float | None


def _state(row: tuple[Any, ...]) -> schemas.AiSessionState:
    session_id, status, phase, progress, updated_at = row[:5]
    return schemas.AiSessionState.model_construct(
        id=session_id,
        status=SessionStatus(status),
        phase=SessionPhase(phase),
        progress=progress,
        updated_at=updated_at,
    )


class AiSessionRepository:
    """Reads and writes of ai_sessions, on the caller's session.

    The conditional writes take the actor (`actor_id`, `admin`) into their WHERE clause,
    so an unknown session, a foreign one and a refused change all match nothing.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _one(
        self, statement: str, params: dict[str, Any] | tuple[Any, ...]
    ) -> tuple[Any, ...] | None:
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(statement, params)
            row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def _change(
        self, statement: str, params: dict[str, Any]
    ) -> schemas.AiSessionState | None:
        row = await self._one(statement, params)
        return None if row is None else _state(row)

    def _session(self, row: tuple[Any, ...]) -> schemas.AiSession:
        return schemas.AiSession.model_validate(dict(zip(_SESSION_FIELDS, row, strict=True)))

    async def insert(
        self,
        *,
        project_id: str,
        input_data: str | None,
        draft: bool,
        priority: int,
        max_attempts: int,
        actor_id: str,
        admin: bool,
    ) -> schemas.AiSession | None:
        """A PENDING session, ready unless a draft (one INSERT … SELECT, waking the waiting
        claims when ready); None when the project is not the actor's."""
        row = await self._one(
            _CREATE,
            {
                "id": new_id(),
                "project": project_id,
                "input": input_data,
                "draft": draft,
                "priority": priority,
                "max_attempts": max_attempts,
                "actor": actor_id,
                "admin": admin,
                "channel": WORK_CHANNEL,
            },
        )
        return None if row is None else self._session(row)

    async def submit(
        self, session_id: str, *, actor_id: str, admin: bool
    ) -> schemas.AiSession | None:
        """A draft becomes ready (and wakes the waiting claims); None when it was no draft."""
        row = await self._one(
            _SUBMIT,
            {"id": session_id, "actor": actor_id, "admin": admin, "channel": WORK_CHANNEL},
        )
        return None if row is None else self._session(row)

    async def lease_view(self, session_id: str, sent_hash: str | None) -> LeaseView | None:
        """The session's lease as a refused write explains it, or None when it is gone."""
        row = await self._one(_LEASE_VIEW, {"id": session_id, "lease": sent_hash})
        if row is None:
            return None
        owner, status, current, expired, earlier = row
        return LeaseView(owner, SessionStatus(status), current, bool(expired), bool(earlier))

    async def read_state(self, session_id: str) -> OwnedState | None:
        """Status and progress with the owner, or None when the session does not exist."""
        row = await self._one(_READ_STATE, (session_id,))
        return None if row is None else OwnedState(_state(row), row[5])

    async def get(self, session_id: str) -> schemas.AiSession | None:
        """The whole session, or None."""
        row = (
            await self.session.execute(select(AISession).where(AISession.id == session_id))
        ).scalar_one_or_none()
        return None if row is None else schemas.AiSession.model_validate(row, from_attributes=True)

    async def project_owner(self, project_id: str) -> str | None:
        """The user owning the project, or None when it does not exist."""
        conn = await self.session.connection()
        return (
            await conn.execute(select(Project.user_id).where(Project.id == project_id))
        ).scalar_one_or_none()

    async def page_of_project(self, project_id: str, params: PageParams) -> Page[schemas.AiSession]:
        """A project's sessions, newest first."""
        statement = paginate_newest_first(
            select(AISession).where(AISession.project_id == project_id),
            created_at=AISession.created_at,
            id_column=AISession.id,
            params=params,
        )
        rows = [
            schemas.AiSession.model_validate(r, from_attributes=True)
            for r in (await self.session.execute(statement)).scalars().all()
        ]
        return make_page(rows, params=params, key=lambda s: (s.created_at, s.id))

    async def record_phase(
        self,
        session_id: str,
        *,
        phase: SessionPhase,
        payload: str | None,
        progress: float,
        lease: Fence,
    ) -> schemas.AiSessionState | None:
        """Store the phase's output, advance phase and progress; None when a rule refused."""
        return await self._change(
            _RECORD_PHASE[lifecycle.PHASE_COLUMN[phase]],
            {
                "id": session_id,
                "payload": payload,
                "phase": phase.value,
                "progress": progress,
                **lease.params(),
            },
        )

    async def start(
        self, session_id: str, *, actor_id: str, admin: bool
    ) -> schemas.AiSessionState | None:
        """PENDING → PROCESSING; None when the session was not PENDING."""
        return await self._change(_START, {"id": session_id, "actor": actor_id, "admin": admin})

    async def complete(
        self,
        session_id: str,
        *,
        final: str | None,
        quality: float | None,
        lease: Fence,
    ) -> schemas.AiSessionState | None:
        """PROCESSING → COMPLETED with processing_time, ending the attempt; None when it was
        not PROCESSING or the lease did not hold."""
        return await self._change(
            _COMPLETE, {"id": session_id, "final": final, "quality": quality, **lease.params()}
        )

    async def fail(
        self,
        session_id: str,
        *,
        error: str,
        retryable: bool,
        retry: RetryPolicy,
        lease: Fence,
    ) -> schemas.AiSessionState | None:
        """→ FAILED, or back to PENDING after a backoff when `retryable` and attempts are
        left; the attempt ends with the error. None when a rule or the lease refused."""
        return await self._change(
            _FAIL,
            {
                "id": session_id,
                "error": error,
                "retryable": retryable,
                "sources": lifecycle.sources_of(SessionStatus.FAILED),
                "retry_base": retry.base_seconds,
                "retry_max": retry.max_seconds,
                **lease.params(),
            },
        )

    async def cancel(
        self, session_id: str, *, actor_id: str, admin: bool
    ) -> schemas.AiSessionState | None:
        """→ CANCELLED from PENDING or PROCESSING (its worker hears it at its next
        heartbeat); None when the status did not allow it."""
        return await self._change(
            _CANCEL,
            {
                "id": session_id,
                "sources": lifecycle.sources_of(SessionStatus.CANCELLED),
                "actor": actor_id,
                "admin": admin,
            },
        )

    async def owner(self, session_id: str, *, lock: bool = False) -> str | None:
        """The user owning the session (its row locked FOR UPDATE with `lock`), or None."""
        conn = await self.session.connection()
        statement = select(AISession.user_id).where(AISession.id == session_id)
        if lock:
            statement = statement.with_for_update()
        return (await conn.execute(statement)).scalar_one_or_none()

    async def delete(self, session_id: str) -> None:
        """Delete the session (its logs and object rows cascade; templates keep NULL)."""
        conn = await self.session.connection()
        await conn.execute(delete(AISession).where(AISession.id == session_id))

    async def result_of(self, session_id: str) -> AiSessionResult | None:
        """Owner, project, status and final result of a session, or None."""
        row = await self._one(_RESULT, (session_id,))
        return None if row is None else AiSessionResult(*row)

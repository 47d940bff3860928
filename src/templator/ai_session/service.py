"""AI session workflows: create, record phases, complete, fail, cancel, read.

Every state change is ONE conditional UPDATE … WHERE <the rule holds> … RETURNING on the
session's own psycopg connection. PostgreSQL re-checks the WHERE clause against the
newest row version when two workers race, so a lost update, a backward step of
progress, or two winners of a terminal transition are impossible without holding
explicit locks across round trips. When the UPDATE matches nothing, one read tells
which rule refused it, for a precise error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session import lifecycle, schemas
from templator.ai_session.errors import (
    InvalidSessionTransition,
    PhaseWentBackwards,
    ProgressWentBackwards,
    SessionNotFound,
    SessionPayloadTooLarge,
)
from templator.cache import Cache
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.kit.raw import driver_connection
from templator.kit.uow import after_commit_invalidate, after_commit_publish
from templator.models import AISession, Project
from templator.models.enums import SessionPhase, SessionStatus
from templator.project.errors import ProjectNotFound

_PHASES = "ARRAY['upload','section_detection','ai_analysis','suggestions','generation']"
_STATE = "id, status, phase, progress, updated_at"
_RECORD_PHASE = {
    column: (
        f"UPDATE ai_sessions SET {column} = %(payload)s::jsonb, phase = %(phase)s, "
        "progress = %(progress)s, "
        "status = CASE WHEN status = 'PENDING' THEN 'PROCESSING'::session_status ELSE status END, "
        "started_at = COALESCE(started_at, now()) "
        "WHERE id = %(id)s AND (user_id = %(actor)s OR %(admin)s) "
        "AND status IN ('PENDING', 'PROCESSING') AND progress <= %(progress)s "
        f"AND array_position({_PHASES}, phase) <= array_position({_PHASES}, %(phase)s::text) "
        f"RETURNING {_STATE}"
    )
    for column in lifecycle.PHASE_COLUMN.values()
}
_COMPLETE = (
    "UPDATE ai_sessions SET status = 'COMPLETED', progress = 1, phase = 'generation', "
    "final_result = COALESCE(%(final)s::jsonb, final_result), "
    "quality_score = COALESCE(%(quality)s, quality_score), finished_at = now(), "
    "processing_time = (extract(epoch FROM now() - COALESCE(started_at, created_at)) * 1000)::int "
    "WHERE id = %(id)s AND (user_id = %(actor)s OR %(admin)s) AND status = 'PROCESSING' "
    f"RETURNING {_STATE}"
)
_FINISH = (
    "UPDATE ai_sessions SET status = %(status)s, finished_at = now(), "
    "error_log = COALESCE(%(error)s::jsonb, error_log) "
    "WHERE id = %(id)s AND (user_id = %(actor)s OR %(admin)s) "
    "AND status = ANY(%(sources)s::session_status[]) "
    f"RETURNING {_STATE}"
)
_START = (
    "UPDATE ai_sessions SET status = 'PROCESSING', started_at = COALESCE(started_at, now()) "
    "WHERE id = %(id)s AND (user_id = %(actor)s OR %(admin)s) AND status = 'PENDING' "
    f"RETURNING {_STATE}"
)
_READ_STATE = f"SELECT {_STATE}, user_id FROM ai_sessions WHERE id = %s"
_SESSION_FIELDS = list(schemas.Session.model_fields)
_CREATE = (
    "INSERT INTO ai_sessions (id, project_id, user_id, input_data) "
    "SELECT %(id)s, p.id, p.user_id, %(input)s::jsonb FROM projects p "
    "WHERE p.id = %(project)s AND (p.user_id = %(actor)s OR %(admin)s) "
    f"RETURNING {', '.join(_SESSION_FIELDS)}"
)


def _encode(payload: Any, *, what: str) -> str:
    data = orjson.dumps(payload)
    if len(data) > schemas.MAX_PAYLOAD_BYTES:
        raise SessionPayloadTooLarge(
            f"{what} is {len(data):,} bytes encoded; the limit is {schemas.MAX_PAYLOAD_BYTES:,}",
            field=what,
        )
    return data.decode()


def _state(row: tuple[Any, ...]) -> schemas.SessionState:
    session_id, status, phase, progress, updated_at = row[:5]
    return schemas.SessionState.model_construct(
        id=session_id,
        status=SessionStatus(status),
        phase=SessionPhase(phase),
        progress=progress,
        updated_at=updated_at,
    )


class SessionService:
    """The AI session lifecycle; the caller commits."""

    def __init__(self, session: AsyncSession, cache: Cache) -> None:
        self.session = session
        self.cache = cache

    def state_key(self, session_id: str) -> str:
        """Cache key of a session's status and progress."""
        return self.cache.key("session", session_id, "state")

    async def create(self, actor: Actor, data: schemas.SessionCreate) -> schemas.Session:
        """A PENDING session in a project the actor may use (one INSERT … SELECT)."""
        input_data = _encode(data.input_data, what="input_data") if data.input_data else None
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(
                _CREATE,
                {
                    "id": new_id(),
                    "project": data.project_id,
                    "input": input_data,
                    "actor": actor.id,
                    "admin": actor.is_admin,
                },
            )
            row = await cursor.fetchone()
        if row is None:
            raise ProjectNotFound(data.project_id)
        return schemas.Session.model_validate(dict(zip(_SESSION_FIELDS, row, strict=True)))

    async def _owned_state(self, actor: Actor, session_id: str) -> tuple[Any, ...]:
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(_READ_STATE, (session_id,))
            row = await cursor.fetchone()
        if row is None or not actor.may_access(str(row[5])):
            raise SessionNotFound(session_id)
        return tuple(row)

    async def get(self, actor: Actor, session_id: str) -> schemas.Session:
        """The whole session."""
        row = (
            await self.session.execute(select(AISession).where(AISession.id == session_id))
        ).scalar_one_or_none()
        if row is None or not actor.may_access(row.user_id):
            raise SessionNotFound(session_id)
        return schemas.Session.model_validate(row, from_attributes=True)

    async def get_state(self, actor: Actor, session_id: str) -> schemas.SessionState:
        """Status and progress, cache-aside (invalidated on every change)."""

        async def load() -> dict[str, Any] | None:
            raw = await driver_connection(self.session)
            async with raw.cursor() as cursor:
                await cursor.execute(_READ_STATE, (session_id,))
                row = await cursor.fetchone()
            if row is None:
                return None
            state = _state(tuple(row))
            return {**state.model_dump(mode="json"), "user_id": row[5]}

        data = await self.cache.get_or_load(
            self.state_key(session_id), load, encode=lambda d: d, decode=lambda d: d
        )
        if data is None or not actor.may_access(str(data["user_id"])):
            raise SessionNotFound(session_id)
        return schemas.SessionState.model_validate(data)

    async def list_for_project(
        self, actor: Actor, project_id: str, params: PageParams
    ) -> Page[schemas.Session]:
        """A project's sessions, newest first."""
        conn = await self.session.connection()
        owner = (
            await conn.execute(select(Project.user_id).where(Project.id == project_id))
        ).scalar_one_or_none()
        if owner is None or not actor.may_access(owner):
            raise ProjectNotFound(project_id)
        statement = paginate_newest_first(
            select(AISession).where(AISession.project_id == project_id),
            created_at=AISession.created_at,
            id_column=AISession.id,
            params=params,
        )
        rows = [
            schemas.Session.model_validate(r, from_attributes=True)
            for r in (await self.session.execute(statement)).scalars().all()
        ]
        return make_page(rows, params=params, key=lambda s: (s.created_at, s.id))

    def _changed(self, state: schemas.SessionState) -> None:
        after_commit_invalidate(self.session, self.state_key(state.id))
        after_commit_publish(
            self.session,
            f"session:{state.id}",
            {
                "session_id": state.id,
                "status": state.status.value,
                "phase": state.phase.value,
                "progress": state.progress,
                "at": datetime.now(UTC).isoformat(),
            },
        )

    async def _run(
        self, actor: Actor, statement: str, params: dict[str, Any]
    ) -> schemas.SessionState | None:
        raw = await driver_connection(self.session)
        async with raw.cursor() as cursor:
            await cursor.execute(statement, {**params, "actor": actor.id, "admin": actor.is_admin})
            row = await cursor.fetchone()
        if row is None:
            return None
        state = _state(tuple(row))
        self._changed(state)
        return state

    async def record_phase(
        self, actor: Actor, session_id: str, update: schemas.PhaseUpdate
    ) -> schemas.SessionState:
        """Write a phase's output, advance the phase and progress (never backwards)."""
        payload = _encode(update.payload, what="payload")
        column = lifecycle.PHASE_COLUMN[update.phase]
        state = await self._run(
            actor,
            _RECORD_PHASE[column],
            {
                "id": session_id,
                "payload": payload,
                "phase": update.phase.value,
                "progress": update.progress,
            },
        )
        if state is not None:
            return state
        fresh = await self._owned_state(actor, session_id)
        status, phase, progress = SessionStatus(fresh[1]), SessionPhase(fresh[2]), float(fresh[3])
        if status in lifecycle.FINAL:
            raise InvalidSessionTransition(
                f"session {session_id} is {status.value}; its phases can no longer change",
                field="status",
            )
        if progress > update.progress:
            raise ProgressWentBackwards(
                f"progress of session {session_id} is {progress:g}; it cannot go back to "
                f"{update.progress:g}",
                field="progress",
            )
        if lifecycle.phase_index(phase) > lifecycle.phase_index(update.phase):
            raise PhaseWentBackwards(
                f"session {session_id} is in phase {phase.value}; it cannot return to "
                f"{update.phase.value}",
                field="phase",
            )
        raise InvalidSessionTransition(f"session {session_id} changed concurrently; retry")

    async def _transition(
        self,
        actor: Actor,
        session_id: str,
        target: SessionStatus,
        statement: str,
        params: dict[str, Any],
    ) -> schemas.SessionState:
        state = await self._run(actor, statement, {"id": session_id, **params})
        if state is not None:
            return state
        status = SessionStatus((await self._owned_state(actor, session_id))[1])
        raise InvalidSessionTransition(
            f"session {session_id} is {status.value}; it cannot move to {target.value}",
            field="status",
        )

    async def start(self, actor: Actor, session_id: str) -> schemas.SessionState:
        """PENDING → PROCESSING."""
        return await self._transition(actor, session_id, SessionStatus.PROCESSING, _START, {})

    async def complete(
        self, actor: Actor, session_id: str, data: schemas.SessionComplete
    ) -> schemas.SessionState:
        """PROCESSING → COMPLETED, computing processing_time in the database."""
        final = _encode(data.final_result, what="final_result") if data.final_result else None
        return await self._transition(
            actor,
            session_id,
            SessionStatus.COMPLETED,
            _COMPLETE,
            {"final": final, "quality": data.quality_score},
        )

    async def fail(
        self, actor: Actor, session_id: str, data: schemas.SessionFail
    ) -> schemas.SessionState:
        """PENDING | PROCESSING → FAILED, keeping the error."""
        return await self._transition(
            actor,
            session_id,
            SessionStatus.FAILED,
            _FINISH,
            {
                "status": SessionStatus.FAILED.value,
                "error": _encode(data.error, what="error"),
                "sources": lifecycle.sources_of(SessionStatus.FAILED),
            },
        )

    async def cancel(self, actor: Actor, session_id: str) -> schemas.SessionState:
        """PENDING | PROCESSING → CANCELLED."""
        return await self._transition(
            actor,
            session_id,
            SessionStatus.CANCELLED,
            _FINISH,
            {
                "status": SessionStatus.CANCELLED.value,
                "error": None,
                "sources": lifecycle.sources_of(SessionStatus.CANCELLED),
            },
        )

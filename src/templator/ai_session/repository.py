"""All SQL about AI sessions: raw psycopg on the session's own connection (hot paths).

Every state change is ONE conditional UPDATE … WHERE <the rule holds> … RETURNING.
PostgreSQL re-checks the WHERE clause against the newest row version when two workers
race, so a lost update, a backward step of progress, or two winners of a terminal
transition are impossible without holding explicit locks across round trips. A change
that matched nothing returns None; the service decides which error that was.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session import lifecycle, schemas
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page, paginate_newest_first
from templator.kit.raw import driver_connection
from templator.models import AISession, Project
from templator.models.enums import SessionPhase, SessionStatus

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
_SESSION_FIELDS = list(schemas.AiSession.model_fields)
_CREATE = (
    "INSERT INTO ai_sessions (id, project_id, user_id, input_data) "
    "SELECT %(id)s, p.id, p.user_id, %(input)s::jsonb FROM projects p "
    "WHERE p.id = %(project)s AND (p.user_id = %(actor)s OR %(admin)s) "
    f"RETURNING {', '.join(_SESSION_FIELDS)}"
)
_RESULT = (
    "SELECT user_id, project_id, status, final_result, quality_score FROM ai_sessions WHERE id = %s"
)


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

    async def insert(
        self, *, project_id: str, input_data: str | None, actor_id: str, admin: bool
    ) -> schemas.AiSession | None:
        """A PENDING session (one INSERT … SELECT); None when the project is not the actor's."""
        row = await self._one(
            _CREATE,
            {
                "id": new_id(),
                "project": project_id,
                "input": input_data,
                "actor": actor_id,
                "admin": admin,
            },
        )
        if row is None:
            return None
        return schemas.AiSession.model_validate(dict(zip(_SESSION_FIELDS, row, strict=True)))

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
        payload: str,
        progress: float,
        actor_id: str,
        admin: bool,
    ) -> schemas.AiSessionState | None:
        """Store the phase's output, advance phase and progress; None when a rule refused."""
        return await self._change(
            _RECORD_PHASE[lifecycle.PHASE_COLUMN[phase]],
            {
                "id": session_id,
                "payload": payload,
                "phase": phase.value,
                "progress": progress,
                "actor": actor_id,
                "admin": admin,
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
        actor_id: str,
        admin: bool,
    ) -> schemas.AiSessionState | None:
        """PROCESSING → COMPLETED with processing_time; None when it was not PROCESSING."""
        return await self._change(
            _COMPLETE,
            {
                "id": session_id,
                "final": final,
                "quality": quality,
                "actor": actor_id,
                "admin": admin,
            },
        )

    async def finish(
        self,
        session_id: str,
        *,
        status: SessionStatus,
        sources: list[str],
        error: str | None,
        actor_id: str,
        admin: bool,
    ) -> schemas.AiSessionState | None:
        """Move to a final `status` from one of `sources`, keeping `error`; else None."""
        return await self._change(
            _FINISH,
            {
                "id": session_id,
                "status": status.value,
                "error": error,
                "sources": sources,
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

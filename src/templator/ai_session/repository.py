"""All SQL about AI sessions: text SQL on the session's own psycopg connection (the hot
path of every run), through `kit.repository.Repository`.

Every state change is ONE conditional UPDATE … WHERE <the rule holds> … RETURNING.
PostgreSQL re-checks the WHERE clause against the newest row version when two workers
race, so a lost update, a backward step of progress, or two winners of a terminal
transition are impossible without holding explicit locks across round trips. A change
that matched nothing returns None; the service decides which error that was.

The statuses and the phase order in these statements are generated from lifecycle.py
when this module is imported: the rule is written there only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from templator.ai_session import lifecycle, schemas
from templator.ai_session.lifecycle import sql_list
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page
from templator.kit.repository import Repository, RowModel, keyset_after, keyset_params
from templator.models.enums import SessionPhase, SessionStatus
from templator.project.ownership import OWNED_PROJECT

_ENUMS = {"status": SessionStatus, "phase": SessionPhase}
STATE = RowModel(schemas.AiSessionState, convert=_ENUMS)
SESSION = RowModel(schemas.AiSession, convert=_ENUMS)
_ACTOR = "(user_id = %(actor)s OR %(admin)s)"
"""The actor may use the session: its owner, or an ADMIN (`Actor.may_access`)."""


def _phase_position(value: str) -> str:
    phases = ", ".join(f"'{p.value}'" for p in lifecycle.PHASE_ORDER)
    return f"array_position(ARRAY[{phases}], {value})"


def _status_in(target: SessionStatus) -> str:
    return f"status IN ({sql_list(lifecycle.sources_of(target)) or 'NULL'})"


_RECORD_PHASE = {
    column: (
        f"UPDATE ai_sessions SET {column} = %(payload)s::jsonb, phase = %(phase)s, "
        "progress = %(progress)s, "
        f"status = CASE WHEN {_status_in(lifecycle.PHASE_STARTS)} "
        f"THEN '{lifecycle.PHASE_STARTS.value}'::session_status ELSE status END, "
        "started_at = COALESCE(started_at, now()) "
        f"WHERE id = %(id)s AND {_ACTOR} "
        f"AND status IN ({sql_list(lifecycle.open_statuses())}) AND progress <= %(progress)s "
        f"AND {_phase_position('phase')} <= {_phase_position('%(phase)s::text')} "
        f"RETURNING {STATE.columns}"
    )
    for column in lifecycle.PHASE_COLUMN.values()
}
_COMPLETE = (
    f"UPDATE ai_sessions SET status = '{SessionStatus.COMPLETED.value}', progress = 1, "
    f"phase = '{lifecycle.PHASE_ORDER[-1].value}', "
    "final_result = COALESCE(%(final)s::jsonb, final_result), "
    "quality_score = COALESCE(%(quality)s, quality_score), finished_at = now(), "
    "processing_time = (extract(epoch FROM now() - COALESCE(started_at, created_at)) * 1000)::int "
    f"WHERE id = %(id)s AND {_ACTOR} AND {_status_in(SessionStatus.COMPLETED)} "
    f"RETURNING {STATE.columns}"
)
_FINISH = (
    "UPDATE ai_sessions SET status = %(status)s, finished_at = now(), "
    "error_log = COALESCE(%(error)s::jsonb, error_log) "
    f"WHERE id = %(id)s AND {_ACTOR} "
    "AND status = ANY(%(sources)s::session_status[]) "
    f"RETURNING {STATE.columns}"
)
_START = (
    f"UPDATE ai_sessions SET status = '{SessionStatus.PROCESSING.value}', "
    "started_at = COALESCE(started_at, now()) "
    f"WHERE id = %(id)s AND {_ACTOR} AND {_status_in(SessionStatus.PROCESSING)} "
    f"RETURNING {STATE.columns}"
)
_READ_STATE = f"SELECT {STATE.columns}, user_id FROM ai_sessions WHERE id = %s"
_GET = f"SELECT {SESSION.columns} FROM ai_sessions WHERE id = %s"
_PAGE = f"SELECT {SESSION.columns} FROM ai_sessions WHERE project_id = %(project)s "
_CREATE = (
    "INSERT INTO ai_sessions (id, project_id, user_id, input_data) "
    f"SELECT %(id)s, p.id, p.user_id, %(input)s::jsonb FROM ({OWNED_PROJECT}) p "
    f"RETURNING {SESSION.columns}"
)
_RESULT = (
    "SELECT user_id, project_id, status, final_result, quality_score FROM ai_sessions WHERE id = %s"
)
_OWNER = "SELECT user_id FROM ai_sessions WHERE id = %s"
_DELETE = "DELETE FROM ai_sessions WHERE id = %s"
_IDS_OF_USER = "SELECT id FROM ai_sessions WHERE user_id = %s ORDER BY id"


class OwnedState(NamedTuple):
    """A session's status and progress, with the user owning it."""

    state: schemas.AiSessionState
    user_id: str


class AiSessionRepository(Repository):
    """Reads and writes of ai_sessions, on the caller's session.

    The conditional writes take the actor (`actor_id`, `admin`) into their WHERE clause,
    so an unknown session, a foreign one and a refused change all match nothing.
    """

    __slots__ = ()

    async def _change(
        self, statement: str, params: dict[str, Any]
    ) -> schemas.AiSessionState | None:
        row = await self.fetch_one(statement, params)
        return None if row is None else STATE(row)

    async def insert(
        self, *, project_id: str, input_data: str | None, actor_id: str, admin: bool
    ) -> schemas.AiSession | None:
        """A PENDING session (one INSERT … SELECT); None when the project is not the actor's."""
        row = await self.fetch_one(
            _CREATE,
            {
                "id": new_id(),
                "project": project_id,
                "input": input_data,
                "actor": actor_id,
                "admin": admin,
            },
        )
        return None if row is None else SESSION(row)

    async def read_state(self, session_id: str) -> OwnedState | None:
        """Status and progress with the owner, or None when the session does not exist."""
        row = await self.fetch_one(_READ_STATE, (session_id,))
        return None if row is None else OwnedState(STATE(row), row[len(STATE.fields)])

    async def get(self, session_id: str) -> schemas.AiSession | None:
        """The whole session, or None."""
        row = await self.fetch_one(_GET, (session_id,))
        return None if row is None else SESSION(row)

    async def page_of_project(self, project_id: str, params: PageParams) -> Page[schemas.AiSession]:
        """A project's sessions, newest first."""
        rows = await self.fetch_all(
            _PAGE + keyset_after(params), {"project": project_id, **keyset_params(params)}
        )
        return make_page(
            [SESSION(row) for row in rows], params=params, key=lambda s: (s.created_at, s.id)
        )

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
        error: str | None,
        actor_id: str,
        admin: bool,
    ) -> schemas.AiSessionState | None:
        """Move to a final `status` from the statuses the lifecycle allows, keeping `error`;
        else None."""
        return await self._change(
            _FINISH,
            {
                "id": session_id,
                "status": status.value,
                "error": error,
                "sources": lifecycle.sources_of(status),
                "actor": actor_id,
                "admin": admin,
            },
        )

    async def owner(self, session_id: str, *, lock: bool = False) -> str | None:
        """The user owning the session (its row locked FOR UPDATE with `lock`), or None."""
        row = await self.fetch_one(_OWNER + (" FOR UPDATE" if lock else ""), (session_id,))
        return None if row is None else str(row[0])

    async def delete(self, session_id: str) -> None:
        """Delete the session (its logs and object rows cascade; templates keep NULL)."""
        await self.run(_DELETE, (session_id,))

    async def result_of(self, session_id: str) -> schemas.SessionResult | None:
        """Owner, project, status and final result of a session, or None."""
        row = await self.fetch_one(_RESULT, (session_id,))
        if row is None:
            return None
        user_id, project_id, status, final, quality = row
        return schemas.SessionResult(user_id, project_id, SessionStatus(status), final, quality)

    async def ids_of_user(self, user_id: str) -> list[str]:
        """Ids of the sessions a user owns (`ai_sessions.user_id`)."""
        return [str(row[0]) for row in await self.fetch_all(_IDS_OF_USER, (user_id,))]

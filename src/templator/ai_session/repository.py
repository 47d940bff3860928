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

from dataclasses import dataclass
from typing import NamedTuple

from templator.ai_session import lifecycle, schemas
from templator.ai_session.events import WORK_CHANNEL
from templator.ai_session.lease import LeaseView
from templator.ai_session.lifecycle import RetryPolicy, sql_list
from templator.ai_session.rows import SESSION, STATE
from templator.kit.ids import new_id
from templator.kit.pagination import Page, PageParams, make_page
from templator.kit.repository import (
    JsonRow,
    Params,
    Repository,
    keyset_after,
    keyset_params,
)
from templator.models.enums import SessionPhase, SessionStatus
from templator.project.ownership import OWNED_PROJECT

_ACTOR = "(user_id = %(actor)s OR %(admin)s)"
"""The actor may use the session: its owner, or an ADMIN (`Actor.may_access`)."""


def _phase_position(value: str) -> str:
    phases = ", ".join(f"'{p.value}'" for p in lifecycle.PHASE_ORDER)
    return f"array_position(ARRAY[{phases}], {value})"


def _status_in(target: SessionStatus) -> str:
    return f"status IN ({sql_list(lifecycle.sources_of(target)) or 'NULL'})"


# A worker's write goes through only under the session's live lease; a session nobody
# holds takes its owner's writes without one (ai_session/lease.py says why one was refused).
_LEASE_HOLDS = (
    "((%(lease)s::text IS NULL AND lease_hash IS NULL AND NOT %(worker)s) "
    "OR (lease_hash = %(lease)s AND lease_expires_at > now()))"
)


def _phase_assignment(column: str) -> str:
    if column == lifecycle.PHASE_COLUMN[SessionPhase.UPLOAD]:
        # The upload phase adds to the web app's input_data; the web app's keys win.
        return (
            f"{column} = CASE WHEN %(payload)s::jsonb IS NULL THEN {column} "
            f"ELSE %(payload)s::jsonb || COALESCE({column}, '{{}}'::jsonb) END, "
        )
    return f"{column} = %(payload)s::jsonb, "


# `phase_at`: when the phase before this one was recorded (or the session was claimed or
# started); the CTE reads it before the UPDATE, so the answer carries how long this phase
# took (the per-phase histogram of /metrics).
_RECORD_PHASE = {
    column: (
        "WITH before AS (SELECT phase_at FROM ai_sessions WHERE id = %(id)s) "
        f"UPDATE ai_sessions SET {_phase_assignment(column)}phase = %(phase)s, "
        "progress = %(progress)s, phase_at = now() "
        f"WHERE id = %(id)s AND {_ACTOR} "
        f"AND status IN ({sql_list(lifecycle.phase_statuses())}) AND progress <= %(progress)s "
        f"AND {_phase_position('phase')} <= {_phase_position('%(phase)s::text')} "
        f"AND {_LEASE_HOLDS} RETURNING {STATE.columns}, "
        "extract(epoch FROM now() - (SELECT phase_at FROM before))::float8"
    )
    for column in lifecycle.PHASE_COLUMN.values()
}


def _ending_attempt(outcome: str, *, error: bool = False) -> str:
    """A CTE `ended` closing the running attempt of the session the CTE `done` returned."""
    return (
        f"ended AS (UPDATE session_attempts a SET outcome = {outcome}, ended_at = now()"
        f"{', error = %(error)s::jsonb' if error else ''} "
        "FROM done WHERE a.session_id = done.id AND a.outcome = 'running') "
    )


_COMPLETE = (
    f"WITH done AS (UPDATE ai_sessions SET status = '{SessionStatus.COMPLETED.value}', "
    f"progress = 1, phase = '{lifecycle.PHASE_ORDER[-1].value}', "
    "final_result = COALESCE(%(final)s::jsonb, final_result), "
    "quality_score = COALESCE(%(quality)s, quality_score), finished_at = now(), "
    "lease_expires_at = NULL, "
    "processing_time = (extract(epoch FROM now() - COALESCE(started_at, created_at)) * 1000)::int "
    f"WHERE id = %(id)s AND {_ACTOR} AND {_status_in(SessionStatus.COMPLETED)} "
    f"AND {_LEASE_HOLDS} RETURNING {STATE.columns}), "
    + _ending_attempt("'completed'")
    + f"SELECT {STATE.columns} FROM done"
)
# A retryable failure of a leased attempt with attempts left goes back to the queue.
_RETRY = (
    f"(%(retryable)s AND status = '{SessionStatus.PROCESSING.value}' "
    "AND lease_hash IS NOT NULL AND attempt < max_attempts)"
)
_FAIL = (
    "WITH done AS (UPDATE ai_sessions SET "
    f"status = (CASE WHEN {_RETRY} THEN '{SessionStatus.PENDING.value}' "
    f"ELSE '{SessionStatus.FAILED.value}' END)::session_status, "
    f"finished_at = CASE WHEN {_RETRY} THEN NULL ELSE now() END, "
    f"next_attempt_at = CASE WHEN {_RETRY} THEN now() + "
    f"{lifecycle.retry_delay_sql('attempt')} END, "
    f"worker = CASE WHEN {_RETRY} THEN NULL ELSE worker END, "
    f"lease_hash = CASE WHEN {_RETRY} THEN NULL ELSE lease_hash END, "
    "lease_expires_at = NULL, error_log = COALESCE(%(error)s::jsonb, error_log) "
    f"WHERE id = %(id)s AND {_ACTOR} AND status = ANY(%(sources)s::session_status[]) "
    f"AND {_LEASE_HOLDS} RETURNING {STATE.columns}), "
    + _ending_attempt(
        f"CASE WHEN done.status = '{SessionStatus.PENDING.value}' THEN 'retry' ELSE 'failed' END",
        error=True,
    )
    + f"SELECT {STATE.columns} FROM done"
)
_CANCEL = (
    f"WITH done AS (UPDATE ai_sessions SET status = '{SessionStatus.CANCELLED.value}', "
    "finished_at = now(), lease_expires_at = NULL "
    f"WHERE id = %(id)s AND {_ACTOR} AND status = ANY(%(sources)s::session_status[]) "
    f"RETURNING {STATE.columns}), "
    + _ending_attempt("'cancelled'")
    + f"SELECT {STATE.columns} FROM done"
)
_START = (
    f"UPDATE ai_sessions SET status = '{SessionStatus.PROCESSING.value}', "
    "started_at = COALESCE(started_at, now()), phase_at = now() "
    f"WHERE id = %(id)s AND {_ACTOR} AND {_status_in(SessionStatus.PROCESSING)} "
    f"RETURNING {STATE.columns}"
)
_LEASE_VIEW = (
    "SELECT user_id, status, lease_hash, lease_expires_at <= now(), EXISTS (SELECT FROM "
    "session_attempts a WHERE a.session_id = s.id AND a.lease_hash = %(lease)s) "
    "FROM ai_sessions s WHERE id = %(id)s"
)
_READ_STATE = f"SELECT {STATE.columns}, user_id FROM ai_sessions WHERE id = %s"
_GET = f"SELECT {SESSION.columns} FROM ai_sessions WHERE id = %s"
_PAGE = f"SELECT {SESSION.columns} FROM ai_sessions WHERE project_id = %(project)s "
# pg_notify in the same transaction: the waiting claims wake when it commits, not before.
_WAKE = (
    "woken AS (SELECT pg_notify(%(channel)s, '') FROM changed "
    "WHERE changed.ready_at IS NOT NULL) SELECT changed.* FROM changed LEFT JOIN woken ON true"
)
_CREATE = (
    "WITH changed AS (INSERT INTO ai_sessions "
    "(id, project_id, user_id, input_data, ready_at, priority, max_attempts) "
    "SELECT %(id)s, p.id, p.user_id, %(input)s::jsonb, "
    "CASE WHEN %(draft)s THEN NULL ELSE now() END, %(priority)s, %(max_attempts)s "
    f"FROM ({OWNED_PROJECT}) p RETURNING {SESSION.columns}), {_WAKE}"
)
_SUBMIT = (
    f"WITH changed AS (UPDATE ai_sessions SET ready_at = now() WHERE id = %(id)s AND {_ACTOR} "
    f"AND status = '{SessionStatus.PENDING.value}' AND ready_at IS NULL "
    f"RETURNING {SESSION.columns}), {_WAKE}"
)
_RESULT = (
    "SELECT user_id, project_id, status, final_result, quality_score FROM ai_sessions WHERE id = %s"
)
_OWNER = "SELECT user_id FROM ai_sessions WHERE id = %s"
_DELETE = "DELETE FROM ai_sessions WHERE id = %s"
_OF_USER = "FROM ai_sessions WHERE user_id = %s"
"""The user's sessions: `user_id` (see `AiSessionService.lock_of_user`)."""


@dataclass(frozen=True, slots=True)
class Fence:
    """Who writes and under which lease (the hash of the `Lease-Token` sent, if any)."""

    actor_id: str
    admin: bool
    worker: bool
    lease_hash: str | None

    def params(self) -> dict[str, object]:
        """The statement parameters of `_ACTOR` and `_LEASE_HOLDS`."""
        return {
            "actor": self.actor_id,
            "admin": self.admin,
            "worker": self.worker,
            "lease": self.lease_hash,
        }


class RecordedPhase(NamedTuple):
    """A recorded phase's new state, and the seconds it took (None when not known)."""

    state: schemas.AiSessionState
    seconds: float | None


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

    async def _change(self, statement: str, params: Params) -> schemas.AiSessionState | None:
        row = await self.fetch_one(statement, params)
        return None if row is None else STATE(row)

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
        row = await self.fetch_one(
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
        return None if row is None else SESSION(row)

    async def submit(
        self, session_id: str, *, actor_id: str, admin: bool
    ) -> schemas.AiSession | None:
        """A draft becomes ready (and wakes the waiting claims); None when it was no draft."""
        row = await self.fetch_one(
            _SUBMIT,
            {"id": session_id, "actor": actor_id, "admin": admin, "channel": WORK_CHANNEL},
        )
        return None if row is None else SESSION(row)

    async def lease_view(self, session_id: str, sent_hash: str | None) -> LeaseView | None:
        """The session's lease as a refused write explains it, or None when it is gone."""
        row = await self.fetch_one(_LEASE_VIEW, {"id": session_id, "lease": sent_hash})
        if row is None:
            return None
        owner, status, current, expired, earlier = row
        return LeaseView(owner, SessionStatus(status), current, bool(expired), bool(earlier))

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
        payload: str | None,
        progress: float,
        lease: Fence,
    ) -> RecordedPhase | None:
        """Store the phase's output, advance phase and progress; None when a rule refused."""
        row = await self.fetch_one(
            _RECORD_PHASE[lifecycle.PHASE_COLUMN[phase]],
            {
                "id": session_id,
                "payload": payload,
                "phase": phase.value,
                "progress": progress,
                **lease.params(),
            },
        )
        if row is None:
            return None
        seconds = row[len(STATE.fields)]
        return RecordedPhase(STATE(row), None if seconds is None else float(seconds))

    async def start(
        self, session_id: str, *, actor_id: str, admin: bool
    ) -> schemas.AiSessionState | None:
        """PENDING → PROCESSING; None when the session was not PENDING."""
        return await self._change(_START, {"id": session_id, "actor": actor_id, "admin": admin})

    async def complete(
        self, session_id: str, *, final: str | None, quality: float | None, lease: Fence
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
        """→ CANCELLED (its worker hears it at its next heartbeat); None when the status
        did not allow it."""
        return await self._change(
            _CANCEL,
            {
                "id": session_id,
                "actor": actor_id,
                "admin": admin,
                "sources": lifecycle.sources_of(SessionStatus.CANCELLED),
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

    async def lock_of_user(self, user_id: str) -> list[str]:
        """Lock the user's sessions FOR UPDATE (in id order); their ids."""
        rows = await self.fetch_all(f"SELECT id {_OF_USER} ORDER BY id FOR UPDATE", (user_id,))
        return [str(row[0]) for row in rows]

    async def export_of_user(self, user_id: str) -> list[JsonRow]:
        """The user's sessions, whole rows in their JSON form."""
        return await self.fetch_json_rows(f"SELECT * {_OF_USER} ORDER BY id", (user_id,))

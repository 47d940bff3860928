"""All SQL of the work queue: claim, heartbeat, release, rescue, attempts, queue figures.

Each operation is one statement. The claim (docs/work-queue.md says why this shape):

1. `ready_tenants` — the users with ready sessions, found by skipping through
   `idx_ai_sessions_ready` (a loose index scan: one probe per tenant, never a walk over
   their sessions);
2. `turn` — those tenants, least recently served first (`work_tenants`), at most
   `limit + SPARE_TENANTS` of them;
3. `candidates` — each tenant's next sessions by priority then readiness, locked with
   FOR UPDATE SKIP LOCKED (rows another claim holds are passed over, never waited for);
4. `chosen` — round robin: every tenant's first session before any tenant's second;
5. the UPDATE hands each one a fresh lease (only its SHA-256 is stored), an attempt row
   is written and the tenants served are marked.

A claim is atomic: the row lock, the re-check of the WHERE clause against the newest row
version (READ COMMITTED's EvalPlanQual) and the unique index on running attempts mean two
claims can never take the same session.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from templator.ai_session import lifecycle
from templator.ai_session.events import WORK_CHANNEL
from templator.ai_session.lifecycle import RetryPolicy
from templator.ai_session.rows import SESSION, STATE
from templator.ai_session.schemas import AiSession, AiSessionState
from templator.kit.repository import Repository
from templator.models.ai_session import LEASED, READY
from templator.work.schemas import Attempt

SPARE_TENANTS = 4
"""Tenants a second pass looks at beyond `limit` when the first came back short (the
first tenants' ready sessions all held by concurrent claims). The first pass looks at
`limit` tenants only: every candidate row is locked, and a row lock is a write."""
_S_FIELDS = ", ".join(f"s.{name}" for name in SESSION.fields)
_DUE = "(next_attempt_at IS NULL OR next_attempt_at <= now())"
_CLAIM = f"""
WITH RECURSIVE ready_tenants(user_id) AS (
    (SELECT user_id FROM ai_sessions WHERE {READY} ORDER BY user_id LIMIT 1)
    UNION ALL
    SELECT (SELECT s.user_id FROM ai_sessions s WHERE {READY} AND s.user_id > r.user_id
            ORDER BY s.user_id LIMIT 1)
    FROM ready_tenants r WHERE r.user_id IS NOT NULL
), turn AS (
    SELECT r.user_id,
           row_number() OVER (ORDER BY w.last_claimed_at NULLS FIRST, r.user_id) AS turn
    FROM ready_tenants r LEFT JOIN work_tenants w ON w.user_id = r.user_id
    WHERE r.user_id IS NOT NULL
    ORDER BY w.last_claimed_at NULLS FIRST, r.user_id
    LIMIT %(tenants)s
), candidates AS (
    SELECT c.id, t.turn,
           row_number() OVER (PARTITION BY c.user_id ORDER BY c.priority DESC, c.ready_at)
               AS rank
    FROM turn t CROSS JOIN LATERAL (
        SELECT s.id, s.user_id, s.priority, s.ready_at FROM ai_sessions s
        WHERE s.user_id = t.user_id AND {READY} AND {_DUE}
        ORDER BY s.priority DESC, s.ready_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) c
), chosen AS (
    SELECT id, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') AS token
    FROM candidates ORDER BY rank, turn LIMIT %(limit)s
), claimed AS (
    UPDATE ai_sessions s SET status = 'PROCESSING', attempt = s.attempt + 1,
        worker = %(worker)s, lease_hash = encode(sha256(convert_to(c.token, 'UTF8')), 'hex'),
        lease_expires_at = now() + make_interval(secs => %(lease)s),
        next_attempt_at = NULL, started_at = COALESCE(s.started_at, now()), phase_at = now()
    FROM chosen c WHERE s.id = c.id
    RETURNING c.token, s.lease_hash, {_S_FIELDS}
), attempts AS (
    INSERT INTO session_attempts (session_id, attempt, worker, lease_hash)
    SELECT id, attempt, worker, lease_hash FROM claimed
), served AS (
    -- A tenant row another claim is marking right now is skipped, not waited for: that
    -- claim marks it served at the same moment.
    SELECT w.user_id FROM work_tenants w WHERE w.user_id IN (SELECT user_id FROM claimed)
    FOR UPDATE SKIP LOCKED
), marked AS (
    UPDATE work_tenants w SET last_claimed_at = clock_timestamp()
    FROM served WHERE w.user_id = served.user_id
), joined AS (
    INSERT INTO work_tenants (user_id, last_claimed_at)
    SELECT DISTINCT c.user_id, clock_timestamp() FROM claimed c
    WHERE NOT EXISTS (SELECT FROM work_tenants w WHERE w.user_id = c.user_id)
    ON CONFLICT DO NOTHING
)
SELECT * FROM claimed
"""


@functools.cache
def _claim_statement(limit: int, tenants: int) -> str:
    """The claim with its two LIMITs written in (integers, never text from a request).

    With the LIMITs as parameters, PostgreSQL's generic plan of the prepared claim is 8x
    slower than a custom one (17.6 against 2.2 ms), so it plans every claim afresh: 0.9 ms
    of a 1.9 ms statement. Written in, the generic plan is as good, and after psycopg
    prepares the statement (5th run on a connection) and PostgreSQL has seen 5 custom
    plans, no claim is planned again: 2.9-4.1 → 1.3-2.2 ms a claim (docs/benchmarks.md,
    "The work queue"). One statement text per (limit, tenants): a handful, cached here
    and in psycopg's prepared statements."""
    return _CLAIM.replace("%(limit)s", str(limit)).replace("%(tenants)s", str(tenants))


_HEARTBEAT = (
    "UPDATE ai_sessions SET lease_expires_at = now() + make_interval(secs => %(lease)s) "
    "WHERE id = %(id)s AND lease_hash = %(hash)s AND status = 'PROCESSING' "
    "AND lease_expires_at > now() RETURNING lease_expires_at"
)
_RELEASE = f"""
WITH done AS (
    UPDATE ai_sessions s SET status = 'PENDING', attempt = GREATEST(s.attempt - 1, 0),
        worker = NULL, lease_hash = NULL, lease_expires_at = NULL, next_attempt_at = NULL
    WHERE s.id = %(id)s AND s.lease_hash = %(hash)s AND s.status = 'PROCESSING'
      AND s.lease_expires_at > now()
    RETURNING {_S_FIELDS}
), ended AS (
    UPDATE session_attempts a SET outcome = 'released', ended_at = now()
    FROM done WHERE a.session_id = done.id AND a.outcome = 'running'
), woken AS (SELECT pg_notify(%(channel)s, '') FROM done)
SELECT done.* FROM done LEFT JOIN woken ON true
"""
_LAST = "s.attempt >= s.max_attempts"
_RESCUE = f"""
WITH expired AS (
    SELECT id FROM ai_sessions WHERE {LEASED} AND lease_expires_at < now()
    ORDER BY lease_expires_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE ai_sessions s SET
        status = (CASE WHEN {_LAST} THEN 'FAILED' ELSE 'PENDING' END)::session_status,
        finished_at = CASE WHEN {_LAST} THEN now() END,
        ready_at = COALESCE(s.ready_at, s.created_at),
        next_attempt_at = CASE WHEN {_LAST} THEN NULL
            ELSE now() + {lifecycle.retry_delay_sql("s.attempt")} END,
        error_log = CASE WHEN {_LAST} THEN jsonb_build_object('code', 'lease_expired',
            'message', format('attempt %%s of %%s: no heartbeat from %%s before its lease ran out',
                              s.attempt, s.max_attempts, s.worker))
            ELSE s.error_log END,
        worker = CASE WHEN {_LAST} THEN s.worker END,
        lease_hash = CASE WHEN {_LAST} THEN s.lease_hash END,
        lease_expires_at = NULL
    FROM expired e WHERE s.id = e.id
    RETURNING s.id, s.status, s.phase, s.progress, s.updated_at
), ended AS (
    UPDATE session_attempts a SET outcome = 'lease_expired', ended_at = now(),
        error = jsonb_build_object('code', 'lease_expired',
                                   'message', 'no heartbeat before the lease ran out')
    FROM moved m WHERE a.session_id = m.id AND a.outcome = 'running'
)
SELECT * FROM moved
"""
_ATTEMPTS = (
    "SELECT attempt, worker, claimed_at, ended_at, outcome, error FROM session_attempts "
    "WHERE session_id = %s ORDER BY id"
)
_QUEUE_BY_TENANT = f"""
SELECT user_id,
       count(*) FILTER (WHERE {_DUE}) AS ready,
       count(*) FILTER (WHERE NOT {_DUE}) AS retry_wait,
       min(ready_at) FILTER (WHERE {_DUE}) AS oldest_ready
FROM ai_sessions WHERE {READY} GROUP BY user_id
"""
_HELD_BY_TENANT = f"""
SELECT user_id, count(*) AS processing,
       count(*) FILTER (WHERE lease_expires_at < now()) AS expired
FROM ai_sessions WHERE {LEASED} GROUP BY user_id
"""
_DRAFTS = "SELECT count(*) FROM ai_sessions WHERE status = 'PENDING' AND ready_at IS NULL"


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A claimed session with the lease token handed out (stored only as its hash)."""

    token: str
    session: AiSession


@dataclass(frozen=True, slots=True)
class TenantQueue:
    """One tenant's sessions in the queue, as /metrics shows them."""

    user_id: str
    ready: int
    retry_wait: int
    processing: int
    expired: int
    oldest_ready: datetime | None


class WorkRepository(Repository):
    """The queue's statements, on the caller's session (text SQL: the hot path)."""

    __slots__ = ()

    async def claim(
        self, *, worker: str, limit: int, lease_seconds: int, tenants: int
    ) -> list[ClaimedRow]:
        """Take up to `limit` ready sessions of the `tenants` least recently served tenants
        with ready work (round robin among them), under fresh leases."""
        rows = await self.fetch_all(
            _claim_statement(int(limit), int(tenants)),
            {"worker": worker, "lease": lease_seconds},
        )
        return [ClaimedRow(row[0], SESSION(row[2:])) for row in rows]

    async def heartbeat(self, session_id: str, *, lease_hash: str, seconds: int) -> datetime | None:
        """Extend a live lease; None when this lease is not the session's live one."""
        rows = await self.fetch_all(
            _HEARTBEAT, {"id": session_id, "hash": lease_hash, "lease": seconds}
        )
        return rows[0][0] if rows else None

    async def release(self, session_id: str, *, lease_hash: str) -> AiSession | None:
        """Give a held session back to the queue at once (the attempt is not counted);
        None when this lease is not the session's live one."""
        rows = await self.fetch_all(
            _RELEASE, {"id": session_id, "hash": lease_hash, "channel": WORK_CHANNEL}
        )
        return SESSION(rows[0]) if rows else None

    async def rescue(self, *, limit: int, retry: RetryPolicy) -> list[AiSessionState]:
        """Sessions whose lease expired: back to PENDING after a backoff, or FAILED after
        their last attempt; each attempt ends as `lease_expired`."""
        rows = await self.fetch_all(
            _RESCUE,
            {"limit": limit, "retry_base": retry.base_seconds, "retry_max": retry.max_seconds},
        )
        return [STATE(row) for row in rows]

    async def attempts(self, session_id: str) -> list[Attempt]:
        """A session's attempts, oldest first."""
        rows = await self.fetch_all(_ATTEMPTS, (session_id,))
        return [
            Attempt(
                attempt=row[0],
                worker=row[1],
                claimed_at=row[2],
                ended_at=row[3],
                outcome=row[4],
                error=row[5],
            )
            for row in rows
        ]

    async def by_tenant(self) -> list[TenantQueue]:
        """Every tenant's ready, waiting and held sessions."""
        queued = {row[0]: row for row in await self.fetch_all(_QUEUE_BY_TENANT, ())}
        held = {row[0]: row for row in await self.fetch_all(_HELD_BY_TENANT, ())}
        tenants: list[TenantQueue] = []
        for user_id in queued.keys() | held.keys():
            q = queued.get(user_id, (user_id, 0, 0, None))
            h = held.get(user_id, (user_id, 0, 0))
            tenants.append(TenantQueue(user_id, q[1], q[2], h[1], h[2], q[3]))
        return tenants

    async def drafts(self) -> int:
        """Sessions not submitted yet."""
        return int((await self.fetch_all(_DRAFTS, ()))[0][0])

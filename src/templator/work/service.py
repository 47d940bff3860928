"""Work-queue workflows: claim, heartbeat, release, rescue, attempts; the caller commits.

The queue's rules, in one place each: readiness is `models.ai_session.READY`; the
lifecycle (PROCESSING → PENDING on retry, rescue and release) is `ai_session.lifecycle`;
the backoff is `lifecycle.retry_delay_sql`; the lease checks of a session's writes are
`ai_session.lease`. Every transition is published like the session's own (cache and SSE).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.errors import (
    AiSessionChangedConcurrently,
    AiSessionFinished,
    AiSessionNotFound,
    InvalidAiSessionTransition,
    LeaseRequired,
)
from templator.ai_session.lease import check as check_lease
from templator.ai_session.lease import hash_of
from templator.ai_session.lifecycle import RetryPolicy
from templator.ai_session.schemas import AiSession, AiSessionState
from templator.ai_session.service import AiSessionService
from templator.cache import Cache
from templator.kit.actor import Actor
from templator.kit.service import Service
from templator.models.enums import SessionStatus
from templator.storage.service import ObjectStore
from templator.stored_object.service import StoredObjectService
from templator.template.schemas import Template, TemplateFromSession, TemplateOptions
from templator.template.service import TemplateService
from templator.work import metrics, schemas
from templator.work.errors import WorkerScopeRequired
from templator.work.repository import SPARE_TENANTS, TenantQueue, WorkRepository

RESCUE_BATCH = 500
"""Expired leases one rescue statement returns (a pass repeats until none is left)."""


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A lease token as a worker sent it, checked for shape."""

    session_id: str
    lease_hash: str


def require_worker(actor: Actor) -> None:
    """WorkerScopeRequired unless the actor is a worker credential."""
    if not actor.is_worker:
        raise WorkerScopeRequired


class WorkService(Service[WorkRepository, ObjectStore]):
    """The queue, on the caller's session."""

    repository_type = WorkRepository

    def __init__(
        self, session: AsyncSession, cache: Cache, store: ObjectStore | None = None
    ) -> None:
        super().__init__(session, cache, store)
        self.sessions = AiSessionService(session, cache)

    async def claim(self, actor: Actor, request: schemas.ClaimRequest) -> list[schemas.Claim]:
        """Take up to `request.limit` ready sessions (fair across tenants) under leases: from
        the `limit` least recently served tenants, then, when that came back short, from a
        few more."""
        require_worker(actor)
        rows = await self.repository.claim(
            worker=request.worker,
            limit=request.limit,
            lease_seconds=request.lease_seconds,
            tenants=request.limit,
        )
        if len(rows) < request.limit:
            rows += await self.repository.claim(
                worker=request.worker,
                limit=request.limit - len(rows),
                lease_seconds=request.lease_seconds,
                tenants=request.limit + SPARE_TENANTS,
            )
        claims: list[schemas.Claim] = []
        objects = StoredObjectService(self.session, self.cache, self.store)
        for row in rows:
            session = row.session
            self.sessions.published(_state_of(session))
            metrics.claimed(session)
            assert session.lease_expires_at is not None
            claims.append(
                schemas.Claim(
                    session=session,
                    lease=schemas.Lease(token=row.token, expires_at=session.lease_expires_at),
                    attempt=session.attempt,
                    designs=await objects.designs_with_urls(session.id),
                )
            )
        return claims

    async def _refuse(self, actor: Actor, held: HeldLease) -> None:
        """Raise what a refused heartbeat or release met."""
        view = await AiSessionService(self.session, self.cache).lease_view(
            held.session_id, held.lease_hash
        )
        if view is None:
            raise AiSessionNotFound(held.session_id)
        if view.status in (SessionStatus.COMPLETED, SessionStatus.FAILED):
            raise AiSessionFinished(
                f"session {held.session_id} is {view.status.value}: there is no lease to keep",
                field="status",
            )
        check_lease(view, held.lease_hash, session_id=held.session_id, worker=actor.is_worker)
        if view.status is SessionStatus.CANCELLED:
            return
        raise AiSessionChangedConcurrently(f"session {held.session_id} changed concurrently; retry")

    @staticmethod
    def held(session_id: str, token: str | None) -> HeldLease:
        """The lease a heartbeat or release names (LeaseRequired when none was sent)."""
        lease_hash = hash_of(token)
        if lease_hash is None:
            raise LeaseRequired(
                f"send the lease of session {session_id} as the Lease-Token header",
                field="Lease-Token",
            )
        return HeldLease(session_id, lease_hash)

    async def heartbeat(
        self, actor: Actor, held: HeldLease, data: schemas.HeartbeatRequest
    ) -> schemas.Heartbeat:
        """Extend the lease; `cancelled` when the session was cancelled (the worker stops)."""
        require_worker(actor)
        expires = await self.repository.heartbeat(
            held.session_id, lease_hash=held.lease_hash, seconds=data.lease_seconds
        )
        if expires is not None:
            return schemas.Heartbeat(expires_at=expires, cancelled=False)
        await self._refuse(actor, held)
        return schemas.Heartbeat(expires_at=None, cancelled=True)

    async def release(self, actor: Actor, held: HeldLease) -> AiSession:
        """Give the session back to the queue now (the attempt does not count)."""
        require_worker(actor)
        released = await self.repository.release(held.session_id, lease_hash=held.lease_hash)
        if released is None:
            await self._refuse(actor, held)
            raise AiSessionFinished(
                f"session {held.session_id} was cancelled; there is nothing to release",
                field="status",
            )
        self.sessions.published(_state_of(released))
        return released

    async def complete(
        self, actor: Actor, session_id: str, data: schemas.WorkComplete, *, lease: str | None
    ) -> schemas.WorkCompleted:
        """Complete the held session and, when `data.template` asks, make its template, in
        the caller's transaction: a worker that dies in between leaves neither.

        Idempotent by the lease: a repeat of a completion that committed (its answer was
        lost) answers the session and the template made of it, and makes none twice.
        """
        require_worker(actor)
        held = self.held(session_id, lease)
        try:
            state = await self.sessions.complete(actor, session_id, data, lease=lease)
        except InvalidAiSessionTransition:
            if not await self._completed_under(held):
                raise
            return await self._completed_already(actor, session_id, data.template)
        template = None
        if data.template is not None:
            template = await self._templates().create_from_session(
                actor, _from_session(session_id, data.template)
            )
        return schemas.WorkCompleted(session=state, template=template)

    def _templates(self) -> TemplateService:
        return TemplateService(self.session, self.cache, self.store)

    async def _completed_under(self, held: HeldLease) -> bool:
        """True when the session is COMPLETED and this lease's attempt completed it."""
        view = await self.sessions.lease_view(held.session_id, held.lease_hash)
        return (
            view is not None
            and view.status is SessionStatus.COMPLETED
            and view.current_hash == held.lease_hash
        )

    async def _completed_already(
        self, actor: Actor, session_id: str, options: TemplateOptions | None
    ) -> schemas.WorkCompleted:
        """The answer to a repeated completion: the template made of the session (made now
        if the first call did not ask for one and this one does). The session's row is
        locked first, so repeats racing each other make one template."""
        await self.sessions.ensure_access(actor, session_id, lock=True)
        templates = self._templates()
        made = [
            await templates.get(actor, i) for i in await templates.made_from_session(session_id)
        ]
        template: Template | None = min(made, key=lambda t: (t.created_at, t.id), default=None)
        if template is None and options is not None:
            template = await templates.create_from_session(
                actor, _from_session(session_id, options)
            )
        state = await self.sessions.get_state(actor, session_id)
        return schemas.WorkCompleted(session=state, template=template)

    async def rescue(
        self, retry: RetryPolicy, *, limit: int = RESCUE_BATCH
    ) -> list[AiSessionState]:
        """Return expired leases' sessions to the queue (or fail them after their last
        attempt), publishing each change."""
        moved = await self.repository.rescue(limit=limit, retry=retry)
        for state in moved:
            self.sessions.published(state)
        metrics.rescued(moved)
        return moved

    async def attempts(self, actor: Actor, session_id: str) -> schemas.AttemptList:
        """A session's attempts with their errors, oldest first."""
        await self.sessions.ensure_access(actor, session_id)
        return schemas.AttemptList(items=await self.repository.attempts(session_id))

    async def by_tenant(self) -> list[TenantQueue]:
        """Every tenant's queue (for /metrics and the dashboard)."""
        return await self.repository.by_tenant()

    async def drafts(self) -> int:
        """Sessions not submitted yet."""
        return await self.repository.drafts()


def _from_session(session_id: str, options: TemplateOptions) -> TemplateFromSession:
    return TemplateFromSession.model_construct(
        session_id=session_id, name=options.name, tags=options.tags
    )


def _state_of(session: AiSession) -> AiSessionState:
    return AiSessionState.model_construct(
        id=session.id,
        status=session.status,
        phase=session.phase,
        progress=session.progress,
        updated_at=session.updated_at,
    )

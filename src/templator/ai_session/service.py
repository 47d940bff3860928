"""AI session workflows: create, record phases, complete, fail, cancel, read.

Every state change is one conditional UPDATE in the repository (see repository.py);
when it matches nothing, one read tells which rule refused it, for a precise error.
A change that went through drops the cached state and is published, both after commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from templator.ai_session import lifecycle, schemas
from templator.ai_session.cache import state_key
from templator.ai_session.errors import (
    AiSessionChangedConcurrently,
    AiSessionFinished,
    AiSessionNotFound,
    AiSessionPayloadTooLarge,
    InvalidAiSessionTransition,
    PhaseWentBackwards,
    ProgressWentBackwards,
    SessionNotDraft,
)
from templator.ai_session.events import progress_channel
from templator.ai_session.lease import LeaseView, hash_of
from templator.ai_session.lease import check as check_lease
from templator.ai_session.lifecycle import RetryPolicy
from templator.ai_session.metrics import phase_timer
from templator.ai_session.repository import AiSessionRepository, Fence, OwnedState
from templator.audit import service as audit
from templator.kit.actor import Actor
from templator.kit.pagination import Page, PageParams
from templator.kit.repository import JsonRow
from templator.kit.service import Service
from templator.kit.uow import (
    after_commit_call,
    after_commit_delete_objects,
    after_commit_invalidate,
    after_commit_publish,
)
from templator.models.enums import SessionPhase, SessionStatus
from templator.project.errors import ProjectNotFound
from templator.project.ownership import project_owner
from templator.storage.errors import require_store
from templator.storage.service import ObjectStore
from templator.template.cache import template_keys


def _encode(payload: Any, *, what: str) -> str:
    data = orjson.dumps(payload)
    if len(data) > schemas.MAX_PAYLOAD_BYTES:
        raise AiSessionPayloadTooLarge(
            f"{what} is {len(data):,} bytes encoded; the limit is {schemas.MAX_PAYLOAD_BYTES:,}",
            field=what,
        )
    return data.decode()


def _encode_state(found: OwnedState) -> dict[str, object]:
    """The cached form of a session's state: its JSON with the owner's id."""
    return {**found.state.model_dump(mode="json"), "user_id": found.user_id}


def _decode_state(data: Any) -> OwnedState:
    return OwnedState(schemas.AiSessionState.model_validate(data), str(data["user_id"]))


class AiSessionService(Service[AiSessionRepository, ObjectStore]):
    """The AI session lifecycle; the caller commits."""

    repository_type = AiSessionRepository

    async def create(self, actor: Actor, data: schemas.AiSessionCreate) -> schemas.AiSession:
        """A PENDING session in a project the actor may use (one INSERT … SELECT)."""
        input_data = _encode(data.input_data, what="input_data") if data.input_data else None
        created = await self.repository.insert(
            project_id=data.project_id,
            input_data=input_data,
            draft=data.draft,
            priority=data.priority,
            max_attempts=data.max_attempts,
            actor_id=actor.id,
            admin=actor.is_admin,
        )
        if created is None:
            raise ProjectNotFound(data.project_id)
        return created

    async def submit(self, actor: Actor, session_id: str) -> schemas.AiSession:
        """A draft becomes ready: workers may claim it from the commit on."""
        submitted = await self.repository.submit(
            session_id, actor_id=actor.id, admin=actor.is_admin
        )
        if submitted is not None:
            return submitted
        status = (await self._owned_state(actor, session_id)).status
        raise SessionNotDraft(
            f"session {session_id} is no draft ({status.value}, already submitted or "
            "created ready); only a draft is submitted",
            field="status",
        )

    @staticmethod
    def _fence(actor: Actor, lease: str | None) -> Fence:
        return Fence(actor.id, actor.works_on_any_session, actor.is_worker, hash_of(lease))

    async def _check_lease(self, actor: Actor, session_id: str, fence: Fence) -> None:
        view = await self.repository.lease_view(session_id, fence.lease_hash)
        if view is None or not actor.may_access(view.owner_id):
            raise AiSessionNotFound(session_id)
        check_lease(view, fence.lease_hash, session_id=session_id, worker=actor.is_worker)

    async def ensure_lease(self, actor: Actor, session_id: str, lease: str | None) -> None:
        """AiSessionNotFound unless the actor may use the session, and the lease error a
        write with `lease` (the Lease-Token sent) meets, if any (the log appends' check)."""
        await self._check_lease(actor, session_id, self._fence(actor, lease))

    async def lease_view(self, session_id: str, sent_hash: str | None) -> LeaseView | None:
        """The session's lease as a refused worker call explains it (the work queue's
        heartbeat and release), or None when the session is gone."""
        return await self.repository.lease_view(session_id, sent_hash)

    async def _owned_state(self, actor: Actor, session_id: str) -> schemas.AiSessionState:
        found = await self.repository.read_state(session_id)
        if found is None or not actor.may_access(str(found.user_id)):
            raise AiSessionNotFound(session_id)
        return found.state

    async def ensure_access(self, actor: Actor, session_id: str, *, lock: bool = False) -> None:
        """AiSessionNotFound unless the session exists and the actor may use it (with
        `lock`, its row is locked FOR UPDATE until the transaction ends)."""
        owner = await self.repository.owner(session_id, lock=lock)
        if owner is None or not actor.may_access(owner):
            raise AiSessionNotFound(session_id)

    async def delete(self, actor: Actor, session_id: str, *, origin: audit.Origin) -> None:
        """Delete a session (its logs and object rows cascade) and, after commit, its objects.

        Templates made from it stay, with `session_id` set to NULL by the foreign key: their
        cached copies are dropped after the transaction ends, like the session's state. The
        session row is locked first, so a template being made from it either commits before
        the templates are read or fails on its foreign key afterwards. Audited.
        """
        await self.ensure_access(actor, session_id, lock=True)
        # Its objects are under prefixes no row lists: a store is needed even when empty.
        store = require_store(self.store)
        # template/service.py imports this module (a template is made from a session): the
        # cascade the other way is imported when it runs.
        from templator.template.service import TemplateService

        templates = TemplateService(self.session, self.cache)
        template_ids = await templates.made_from_session(session_id)
        await self.repository.delete(session_id)
        after_commit_invalidate(
            self.session,
            state_key(self.cache, session_id),
            *template_keys(self.cache, template_ids),
        )
        after_commit_delete_objects(
            self.session, store, prefixes=(f"designs/{session_id}/", f"modules/{session_id}/")
        )
        await audit.record(
            self.session, origin, "session.delete", target_type="session", target_id=session_id
        )

    async def get(self, actor: Actor, session_id: str) -> schemas.AiSession:
        """The whole session."""
        found = await self.repository.get(session_id)
        if found is None or not actor.may_access(found.user_id):
            raise AiSessionNotFound(session_id)
        return found

    async def get_state(self, actor: Actor, session_id: str) -> schemas.AiSessionState:
        """Status and progress, cache-aside (invalidated on every change)."""
        found = await self.cache.get_or_load(
            state_key(self.cache, session_id),
            lambda: self.repository.read_state(session_id),
            encode=_encode_state,
            decode=_decode_state,
        )
        if found is None or not actor.may_access(found.user_id):
            raise AiSessionNotFound(session_id)
        return found.state

    async def list_for_project(
        self, actor: Actor, project_id: str, params: PageParams
    ) -> Page[schemas.AiSession]:
        """A project's sessions, newest first."""
        await project_owner(self.session, actor, project_id)
        return await self.repository.page_of_project(project_id, params)

    def published(self, state: schemas.AiSessionState) -> None:
        """Drop the cached state and publish the change, both after commit (the work queue's
        own transitions: claim, release, rescue)."""
        self._changed(state)

    async def result_of(self, actor: Actor, session_id: str) -> schemas.SessionResult:
        """What the session produced (for a template made of it); AiSessionNotFound unless
        the actor may use the session."""
        found = await self.repository.result_of(session_id)
        if found is None or not actor.may_access(found.user_id):
            raise AiSessionNotFound(session_id)
        return found

    async def quality_score(self, session_id: str) -> float | None:
        """The session's quality score (None without one, or without the session)."""
        found = await self.repository.result_of(session_id)
        return None if found is None else found.quality_score

    async def lock_of_user(self, user_id: str) -> list[str]:
        """Lock the user's sessions until the transaction ends; their ids.

        "The user's sessions" are those whose `user_id` is theirs, here and in
        `export_of_user`: a session takes its project's owner as `user_id` when it is made
        (INSERT … SELECT from the project) and a project never changes owner, so this is
        also every session of the user's projects, found through the (user_id, …) index.
        """
        return await self.repository.lock_of_user(user_id)

    async def export_of_user(self, user_id: str) -> list[JsonRow]:
        """The user's sessions (as `lock_of_user` defines them), whole rows as JSON."""
        return await self.repository.export_of_user(user_id)

    def _changed(self, state: schemas.AiSessionState) -> None:
        after_commit_invalidate(self.session, state_key(self.cache, state.id))
        after_commit_publish(
            self.session,
            progress_channel(state.id),
            {
                "session_id": state.id,
                "status": state.status.value,
                "phase": state.phase.value,
                "progress": state.progress,
                "at": datetime.now(UTC).isoformat(),
            },
        )

    async def record_phase(
        self,
        actor: Actor,
        session_id: str,
        update: schemas.PhaseUpdate,
        *,
        lease: str | None = None,
    ) -> schemas.AiSessionState:
        """Write a phase's output, advance the phase and progress (never backwards), on a
        PROCESSING session under its lease (when it has one)."""
        if update.phase is SessionPhase.UPLOAD:
            # Added under the web app's input_data (its keys win); a payload that is no
            # object is kept under the key "upload".
            upload = update.payload
            if upload is not None and not isinstance(upload, dict):
                upload = {SessionPhase.UPLOAD.value: upload}
            payload = None if upload is None else _encode(upload, what="payload")
        else:
            payload = _encode(update.payload, what="payload")
        fence = self._fence(actor, lease)
        recorded = await self.repository.record_phase(
            session_id,
            phase=update.phase,
            payload=payload,
            progress=update.progress,
            lease=fence,
        )
        if recorded is not None:
            self._changed(recorded.state)
            if recorded.seconds is not None:
                after_commit_call(self.session, phase_timer(update.phase, recorded.seconds))
            return recorded.state
        fresh = await self._owned_state(actor, session_id)
        status, phase, progress = fresh.status, fresh.phase, float(fresh.progress)
        if status in lifecycle.FINAL:
            raise AiSessionFinished(
                f"session {session_id} is {status.value}; its phases can no longer change",
                field="status",
            )
        await self._check_lease(actor, session_id, fence)
        if status is SessionStatus.PENDING:
            raise InvalidAiSessionTransition(
                f"session {session_id} is PENDING: a worker claims it (or its owner starts "
                "it) before phases are recorded",
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
        raise AiSessionChangedConcurrently(f"session {session_id} changed concurrently; retry")

    async def _transitioned(
        self,
        actor: Actor,
        session_id: str,
        target: SessionStatus,
        state: schemas.AiSessionState | None,
        fence: Fence | None = None,
    ) -> schemas.AiSessionState:
        """Publish a transition that happened; name the rule that refused one that did not."""
        if state is not None:
            self._changed(state)
            return state
        status = (await self._owned_state(actor, session_id)).status
        if fence is not None and status not in lifecycle.FINAL:
            await self._check_lease(actor, session_id, fence)
        if lifecycle.can_move(status, target):
            # The rule allows the move from the status read now: the UPDATE met another
            # status, which a concurrent change has since replaced.
            raise AiSessionChangedConcurrently(f"session {session_id} changed concurrently; retry")
        raise InvalidAiSessionTransition(
            f"session {session_id} is {status.value}; it cannot move to {target.value}",
            field="status",
        )

    async def start(self, actor: Actor, session_id: str) -> schemas.AiSessionState:
        """PENDING → PROCESSING (its owner runs it; workers claim instead)."""
        state = await self.repository.start(session_id, actor_id=actor.id, admin=actor.is_admin)
        return await self._transitioned(actor, session_id, SessionStatus.PROCESSING, state)

    async def complete(
        self,
        actor: Actor,
        session_id: str,
        data: schemas.AiSessionComplete,
        *,
        lease: str | None = None,
    ) -> schemas.AiSessionState:
        """PROCESSING → COMPLETED (under its lease), computing processing_time in the
        database."""
        final = _encode(data.final_result, what="final_result") if data.final_result else None
        fence = self._fence(actor, lease)
        state = await self.repository.complete(
            session_id, final=final, quality=data.quality_score, lease=fence
        )
        return await self._transitioned(actor, session_id, SessionStatus.COMPLETED, state, fence)

    async def fail(
        self,
        actor: Actor,
        session_id: str,
        data: schemas.AiSessionFail,
        *,
        retry: RetryPolicy | None = None,
        lease: str | None = None,
    ) -> schemas.AiSessionState:
        """PENDING | PROCESSING → FAILED keeping the error, or, for a retryable failure of a
        leased attempt with attempts left, back to PENDING after a backoff."""
        error = _encode(data.error, what="error")
        fence = self._fence(actor, lease)
        state = await self.repository.fail(
            session_id,
            error=error,
            retryable=data.retryable,
            retry=retry or RetryPolicy.default(),
            lease=fence,
        )
        return await self._transitioned(actor, session_id, SessionStatus.FAILED, state, fence)

    async def cancel(self, actor: Actor, session_id: str) -> schemas.AiSessionState:
        """PENDING | PROCESSING → CANCELLED; the worker hears it at its next heartbeat."""
        state = await self.repository.cancel(session_id, actor_id=actor.id, admin=actor.is_admin)
        return await self._transitioned(actor, session_id, SessionStatus.CANCELLED, state)

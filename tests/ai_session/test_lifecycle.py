"""The AI session lifecycle, enforced against the real database."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session import lifecycle
from templator.ai_session.errors import (
    AiSessionNotFound,
    AiSessionPayloadTooLarge,
    InvalidAiSessionTransition,
    PhaseWentBackwards,
    ProgressWentBackwards,
)
from templator.ai_session.schemas import (
    AiSessionComplete,
    AiSessionCreate,
    AiSessionFail,
    PhaseUpdate,
)
from templator.ai_session.service import AiSessionService
from templator.connections import Connections
from templator.kit.actor import Actor
from templator.models import AiSession, SessionPhase, SessionStatus, UserRole
from tests.support.factories import actor_of, make_project, make_user


async def _service_and_session(
    db_session: AsyncSession, connections: Connections, *, started: bool = False
) -> tuple[AiSessionService, Actor, str]:
    user = await make_user(db_session)
    project = await make_project(db_session, user=user)
    service = AiSessionService(db_session, connections.cache)
    actor = actor_of(user)
    created = await service.create(actor, AiSessionCreate(project_id=project.id))
    if started:
        await service.start(actor, created.id)
    return service, actor, created.id


async def _status_of(db_session: AsyncSession, session_id: str) -> SessionStatus:
    return (
        await db_session.execute(select(AiSession.status).where(AiSession.id == session_id))
    ).scalar_one()


@pytest.mark.parametrize("current", list(SessionStatus))
@pytest.mark.parametrize(
    "target",
    [
        SessionStatus.COMPLETED,
        SessionStatus.FAILED,
        SessionStatus.CANCELLED,
        SessionStatus.PROCESSING,
    ],
)
async def test_every_transition_is_allowed_or_refused_as_the_table_says(
    db_session: AsyncSession,
    connections: Connections,
    current: SessionStatus,
    target: SessionStatus,
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections)
    row = await db_session.get(AiSession, session_id)
    assert row is not None
    row.status = current
    await db_session.flush()
    moves = {
        SessionStatus.COMPLETED: lambda: service.complete(actor, session_id, AiSessionComplete()),
        SessionStatus.FAILED: lambda: service.fail(
            actor, session_id, AiSessionFail(error={"e": 1})
        ),
        SessionStatus.CANCELLED: lambda: service.cancel(actor, session_id),
        SessionStatus.PROCESSING: lambda: service.start(actor, session_id),
    }
    if lifecycle.can_move(current, target):
        state = await moves[target]()
        assert state.status is target
    else:
        with pytest.raises(
            InvalidAiSessionTransition,
            match=f"is {current.value}; it cannot move to {target.value}",
        ):
            await moves[target]()
        await db_session.refresh(row)
        assert row.status is current


async def test_phases_write_their_column_and_advance(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections, started=True)
    for i, phase in enumerate(SessionPhase, start=1):
        state = await service.record_phase(
            actor,
            session_id,
            PhaseUpdate(phase=phase, payload={"phase": phase.value, "n": i}, progress=i / 5),
        )
        assert state.phase is phase and state.status is SessionStatus.PROCESSING
    full = await service.get(actor, session_id)
    assert full.input_data == {"phase": "upload", "n": 1}
    assert full.sections == {"phase": "section_detection", "n": 2}
    assert full.ai_analysis == {"phase": "ai_analysis", "n": 3}
    assert full.suggestions == {"phase": "suggestions", "n": 4}
    assert full.final_result == {"phase": "generation", "n": 5}
    assert full.started_at is not None and full.progress == 1.0


async def test_completion_computes_processing_time_and_keeps_the_score(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections)
    await service.start(actor, session_id)
    state = await service.complete(
        actor, session_id, AiSessionComplete(final_result={"html": "<p/>"}, quality_score=0.9)
    )
    assert state.status is SessionStatus.COMPLETED and state.progress == 1.0
    full = await service.get(actor, session_id)
    assert full.processing_time is not None and full.processing_time >= 0
    assert full.quality_score == 0.9 and full.finished_at is not None
    assert full.final_result == {"html": "<p/>"}


async def test_failure_keeps_the_error_log(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections)
    await service.fail(actor, session_id, AiSessionFail(error={"error": "ModelTimeout"}))
    assert (await service.get(actor, session_id)).error_log == {"error": "ModelTimeout"}


async def test_progress_backwards_is_refused_and_nothing_is_written(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections, started=True)
    await service.record_phase(
        actor, session_id, PhaseUpdate(phase=SessionPhase.UPLOAD, payload={"a": 1}, progress=0.4)
    )
    with pytest.raises(ProgressWentBackwards, match=r"is 0\.4; it cannot go back to 0\.2"):
        await service.record_phase(
            actor,
            session_id,
            PhaseUpdate(phase=SessionPhase.SECTION_DETECTION, payload={"b": 2}, progress=0.2),
        )
    full = await service.get(actor, session_id)
    assert full.sections is None and full.progress == 0.4 and full.phase is SessionPhase.UPLOAD


async def test_phase_backwards_is_refused(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections, started=True)
    await service.record_phase(
        actor, session_id, PhaseUpdate(phase=SessionPhase.AI_ANALYSIS, payload={}, progress=0.6)
    )
    with pytest.raises(PhaseWentBackwards, match="cannot return to upload"):
        await service.record_phase(
            actor, session_id, PhaseUpdate(phase=SessionPhase.UPLOAD, payload={}, progress=0.7)
        )


async def test_phase_work_after_a_final_status_is_refused(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections)
    await service.cancel(actor, session_id)
    with pytest.raises(InvalidAiSessionTransition, match="CANCELLED"):
        await service.record_phase(
            actor, session_id, PhaseUpdate(phase=SessionPhase.UPLOAD, payload={}, progress=0.1)
        )


def test_progress_outside_the_unit_interval_is_refused_by_the_schema() -> None:
    with pytest.raises(ValueError, match="progress"):
        PhaseUpdate(phase=SessionPhase.UPLOAD, payload={}, progress=1.2)


async def test_oversize_payload_is_refused_naming_the_limit(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections, started=True)
    with pytest.raises(AiSessionPayloadTooLarge, match="the limit is 1,048,576"):
        await service.record_phase(
            actor,
            session_id,
            PhaseUpdate(
                phase=SessionPhase.SECTION_DETECTION, payload="x" * 1_100_000, progress=0.1
            ),
        )
    assert (await service.get(actor, session_id)).sections is None


async def test_unknown_and_foreign_sessions_are_not_found(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, session_id = await _service_and_session(db_session, connections)
    stranger = Actor((await make_user(db_session)).id, UserRole.USER)
    with pytest.raises(AiSessionNotFound):
        await service.get(stranger, session_id)
    with pytest.raises(AiSessionNotFound):
        await service.cancel(stranger, session_id)
    with pytest.raises(AiSessionNotFound):
        await service.get(actor, "z" * 25)
    admin = Actor((await make_user(db_session, role=UserRole.ADMIN)).id, UserRole.ADMIN)
    assert (await service.get(admin, session_id)).id == session_id

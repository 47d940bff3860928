"""Deleting a session drops its cached state and the cached templates made from it."""

from __future__ import annotations

import pytest

from templator.ai_session.errors import AiSessionNotFound
from templator.ai_session.schemas import AiSessionComplete, AiSessionCreate, PhaseUpdate
from templator.ai_session.service import AiSessionService
from templator.audit.service import CLI
from templator.connections import Connections
from templator.kit.uow import unit_of_work
from templator.models import SessionPhase
from templator.template.schemas import TemplateFromSession
from templator.template.service import TemplateService
from tests.support.factories import Committed, hubspot_config


async def _completed_session_with_templates(
    conns: Connections, committed: Committed, n: int
) -> tuple[str, list[str]]:
    """A COMPLETED session and `n` templates made from it."""
    result = {"name": "Hero", "html": "<p/>", "hubspot_config": hubspot_config()}
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        sessions = AiSessionService(session, conns.cache)
        sid = (
            await sessions.create(committed.actor, AiSessionCreate(project_id=committed.project_id))
        ).id
        await sessions.start(committed.actor, sid)
        await sessions.record_phase(
            committed.actor,
            sid,
            PhaseUpdate(phase=SessionPhase.GENERATION, payload=result, progress=1),
        )
        await sessions.complete(committed.actor, sid, AiSessionComplete())
        templates = TemplateService(session, conns.cache)
        tids = [
            (
                await templates.create_from_session(
                    committed.actor, TemplateFromSession(session_id=sid)
                )
            ).id
            for _ in range(n)
        ]
    return sid, tids


async def _delete_session(conns: Connections, committed: Committed, sid: str) -> None:
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        await AiSessionService(session, conns.cache, conns.store).delete(
            committed.actor, sid, origin=CLI
        )


async def test_deleting_a_session_drops_its_cached_state(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    sid, _ = await _completed_session_with_templates(conns, committed, 0)
    async with conns.sessionmaker() as session:
        state = await AiSessionService(session, conns.cache).get_state(committed.actor, sid)
    assert state.progress == 1

    await _delete_session(conns, committed, sid)

    async with conns.sessionmaker() as session:
        with pytest.raises(AiSessionNotFound):
            await AiSessionService(session, conns.cache).get_state(committed.actor, sid)


async def test_deleting_a_session_drops_the_cached_templates_made_from_it(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    sid, tids = await _completed_session_with_templates(conns, committed, 3)
    async with conns.sessionmaker() as session:
        templates = TemplateService(session, conns.cache)
        assert [(await templates.get(committed.actor, t)).session_id for t in tids] == [sid] * 3

    await _delete_session(conns, committed, sid)

    async with conns.sessionmaker() as session:
        templates = TemplateService(session, conns.cache)
        assert [(await templates.get(committed.actor, t)).session_id for t in tids] == [None] * 3

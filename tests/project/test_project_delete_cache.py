"""Deleting a project drops the cached entries of everything that went with it."""

from __future__ import annotations

import pytest

from templator.ai_session.cache import state_keys
from templator.ai_session.errors import AiSessionNotFound
from templator.ai_session.schemas import AiSessionCreate
from templator.ai_session.service import AiSessionService
from templator.audit.service import CLI
from templator.connections import Connections
from templator.kit.pagination import PageParams
from templator.kit.uow import unit_of_work
from templator.project.service import ProjectService
from templator.template.cache import template_keys
from templator.template.errors import TemplateNotFound
from templator.template.schemas import TemplateCreate
from templator.template.service import TemplateService
from tests.support.factories import Committed, hubspot_config


async def _fill(conns: Connections, committed: Committed, n: int) -> tuple[list[str], list[str]]:
    """`n` sessions and `n` templates in the committed project."""
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        sessions = AiSessionService(session, conns.cache)
        templates = TemplateService(session, conns.cache)
        sids = [
            (
                await sessions.create(
                    committed.actor, AiSessionCreate(project_id=committed.project_id)
                )
            ).id
            for _ in range(n)
        ]
        tids = [
            (
                await templates.create(
                    committed.actor,
                    TemplateCreate(
                        project_id=committed.project_id,
                        name=f"T{i}",
                        html_content="<p/>",
                        hubspot_config=hubspot_config(),
                    ),
                )
            ).id
            for i in range(n)
        ]
    return sids, tids


async def _read_all(
    conns: Connections, committed: Committed, sids: list[str], tids: list[str]
) -> int:
    """Read every session state and template (caching them); return how many were found."""
    found = 0
    async with conns.sessionmaker() as session:
        for sid in sids:
            try:
                await AiSessionService(session, conns.cache).get_state(committed.actor, sid)
                found += 1
            except AiSessionNotFound:
                pass
        for tid in tids:
            try:
                await TemplateService(session, conns.cache).get(committed.actor, tid)
                found += 1
            except TemplateNotFound:
                pass
    return found


async def _cached(conns: Connections, sids: list[str], tids: list[str]) -> int:
    """How many of the sessions' state keys and templates' keys are in Redis."""
    keys = state_keys(conns.cache, sids) + template_keys(conns.cache, tids)
    return int(await conns.redis.exists(*keys))


async def test_deleting_a_project_drops_its_cached_templates_and_session_states(
    connections: Connections, committed: Committed
) -> None:
    conns = connections
    sids, tids = await _fill(conns, committed, 3)
    assert await _read_all(conns, committed, sids, tids) == 6
    assert await _cached(conns, sids, tids) == 6

    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        await ProjectService(session, conns.cache).delete(
            committed.actor, committed.project_id, origin=CLI
        )

    assert await _cached(conns, sids, tids) == 0
    assert await _read_all(conns, committed, sids, tids) == 0


async def test_deleting_a_project_drops_the_owners_cached_project_list(
    connections: Connections, committed: Committed
) -> None:
    conns = connections
    async with conns.sessionmaker() as session:
        page = await ProjectService(session, conns.cache).list_for(
            committed.actor, committed.actor.id, PageParams()
        )
    assert [p.id for p in page.items] == [committed.project_id]

    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        await ProjectService(session, conns.cache).delete(
            committed.actor, committed.project_id, origin=CLI
        )

    async with conns.sessionmaker() as session:
        page = await ProjectService(session, conns.cache).list_for(
            committed.actor, committed.actor.id, PageParams()
        )
    assert page.items == []


async def test_a_rolled_back_project_delete_keeps_serving_its_templates_and_sessions(
    connections: Connections, committed: Committed
) -> None:
    conns = connections
    sids, tids = await _fill(conns, committed, 2)
    assert await _read_all(conns, committed, sids, tids) == 4

    with pytest.raises(RuntimeError, match="after the delete"):
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            await ProjectService(session, conns.cache).delete(
                committed.actor, committed.project_id, origin=CLI
            )
            raise RuntimeError("a later step fails after the delete")

    assert await _cached(conns, sids, tids) == 0, "dropped after the rollback too"
    assert await _read_all(conns, committed, sids, tids) == 4

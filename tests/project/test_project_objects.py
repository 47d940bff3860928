"""Deleting a project deletes its sessions' and templates' objects, after the commit."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.schemas import AiSessionCreate
from templator.ai_session.service import AiSessionService
from templator.audit.service import CLI
from templator.connections import Connections
from templator.dev.localstack.process import free_port
from templator.kit.uow import unit_of_work
from templator.models import Project, StoredObject
from templator.project.schemas import ProjectCreate
from templator.project.service import ProjectService
from templator.storage.errors import StoreUnavailable
from templator.storage.service import ObjectStore
from templator.stored_object.service import StoredObjectService
from templator.template.schemas import TemplateCreate
from templator.template.service import TemplateService
from tests.support.factories import Committed, hubspot_config

HTML = b"<!DOCTYPE html><html><body><h1>Landing</h1></body></html>"


async def _fill(conns: Connections, committed: Committed, project_id: str) -> list[str]:
    """A session with an uploaded design and a template with an uploaded module zip."""
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        ai_session = await AiSessionService(session, conns.cache).create(
            committed.actor, AiSessionCreate(project_id=project_id)
        )
        templates = TemplateService(session, conns.cache, conns.store)
        template = await templates.create(
            committed.actor,
            TemplateCreate(
                project_id=project_id,
                name="Hero",
                html_content="<p/>",
                hubspot_config=hubspot_config(),
            ),
        )
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        assets = StoredObjectService(session, conns.cache, conns.store)
        design = await assets.upload_design(
            committed.actor, ai_session.id, io.BytesIO(HTML), content_type="text/html"
        )
        module = await assets.export_module(committed.actor, template.id, upload=True, origin=CLI)
    assert module.key is not None
    return [design.key, module.key]


async def _second_project(conns: Connections, committed: Committed) -> str:
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        project = await ProjectService(session, conns.cache).create(
            committed.actor, ProjectCreate(name="Other")
        )
    return project.id


async def _rows(conns: Connections, keys: list[str]) -> int:
    async with conns.sessionmaker() as session:
        statement = select(func.count()).select_from(StoredObject).where(StoredObject.key.in_(keys))
        return (await session.execute(statement)).scalar_one()


def _stored_keys(conns: Connections) -> set[str]:
    return {o["key"] for o in conns.require_store().iter_objects()}


async def test_deleting_a_project_removes_its_objects_and_their_rows(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    keys = await _fill(conns, committed, committed.project_id)
    assert _stored_keys(conns) == set(keys)
    assert await _rows(conns, keys) == 2

    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        await ProjectService(session, conns.cache, conns.store).delete(
            committed.actor, committed.project_id, origin=CLI
        )

    assert _stored_keys(conns) == set()
    assert await _rows(conns, keys) == 0


async def test_deleting_a_project_keeps_the_objects_of_the_owners_other_projects(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    await _fill(conns, committed, committed.project_id)
    kept = await _fill(conns, committed, await _second_project(conns, committed))

    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        await ProjectService(session, conns.cache, conns.store).delete(
            committed.actor, committed.project_id, origin=CLI
        )

    assert _stored_keys(conns) == set(kept)
    assert await _rows(conns, kept) == 2


async def test_a_failed_project_delete_keeps_its_objects(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    keys = await _fill(conns, committed, committed.project_id)

    with pytest.raises(RuntimeError, match="after the delete"):
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            await ProjectService(session, conns.cache, conns.store).delete(
                committed.actor, committed.project_id, origin=CLI
            )
            raise RuntimeError("a later step fails after the delete")

    assert _stored_keys(conns) == set(keys)
    assert await _rows(conns, keys) == 2


async def test_a_store_failure_after_commit_leaves_the_delete_standing_and_the_objects_to_gc(
    store_connections: Connections, committed: Committed, caplog: pytest.LogCaptureFixture
) -> None:
    conns = store_connections
    keys = await _fill(conns, committed, committed.project_id)
    dead = ObjectStore(conns.settings, endpoint_url=f"http://127.0.0.1:{free_port()}")

    with caplog.at_level(logging.ERROR, logger="templator.uow"):
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            await ProjectService(session, conns.cache, dead).delete(
                committed.actor, committed.project_id, origin=CLI
            )

    assert "post-commit task failed" in caplog.text
    async with conns.sessionmaker() as session:
        assert await session.get(Project, committed.project_id) is None
        gc = StoredObjectService(session, conns.cache, conns.require_store())
        orphans = await gc.find_orphans(grace=timedelta(0))
    assert await _rows(conns, keys) == 0
    assert {o.key for o in orphans} == set(keys)


async def _refused_for_want_of_a_store(
    conns: Connections, keys: list[str], delete: Callable[[AsyncSession], Awaitable[object]]
) -> None:
    """`delete` (in its own unit of work) raises StoreUnavailable and changes nothing."""
    with pytest.raises(StoreUnavailable, match="no object store is configured"):
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            await delete(session)
    assert _stored_keys(conns) == set(keys)
    assert await _rows(conns, keys) == 2


async def test_deleting_a_project_with_objects_but_no_store_is_refused_and_changes_nothing(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    keys = await _fill(conns, committed, committed.project_id)

    await _refused_for_want_of_a_store(
        conns,
        keys,
        lambda session: ProjectService(session, conns.cache).delete(
            committed.actor, committed.project_id, origin=CLI
        ),
    )
    async with conns.sessionmaker() as session:
        assert await session.get(Project, committed.project_id) is not None


async def test_deleting_a_template_with_objects_but_no_store_is_refused_and_changes_nothing(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    keys = await _fill(conns, committed, committed.project_id)
    async with conns.sessionmaker() as session:
        statement = select(StoredObject.template_id).where(StoredObject.key == keys[1])
        template_id = (await session.execute(statement)).scalar_one()

    await _refused_for_want_of_a_store(
        conns,
        keys,
        lambda session: TemplateService(session, conns.cache).delete(
            committed.actor, template_id, origin=CLI
        ),
    )

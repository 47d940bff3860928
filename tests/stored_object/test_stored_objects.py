"""The database and the object store agree: rows only for stored objects, deletes, gc."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from templator.ai_session.errors import AiSessionNotFound
from templator.ai_session.schemas import AiSessionCreate
from templator.ai_session.service import AiSessionService
from templator.audit.service import CLI
from templator.config import ProcessRole
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port
from templator.kit.ids import new_id
from templator.kit.uow import unit_of_work
from templator.models import StoredObject
from templator.storage.errors import StoreUnavailable
from templator.stored_object.service import StoredObjectService
from templator.template.schemas import TemplateCreate
from templator.template.service import TemplateService
from tests.support.factories import Committed, hubspot_config

HTML = b"<!DOCTYPE html><html><body><h1>Landing</h1></body></html>"


async def _session_id(conns: Connections, committed: Committed) -> str:
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        created = await AiSessionService(session, conns.cache).create(
            committed.actor, AiSessionCreate(project_id=committed.project_id)
        )
    return created.id


def _assets(session, conns: Connections) -> StoredObjectService:  # type: ignore[no-untyped-def]
    return StoredObjectService(session, conns.cache, conns.store)


async def _rows(conns: Connections, **where: str) -> int:
    async with conns.sessionmaker() as session:
        statement = select(func.count()).select_from(StoredObject)
        for column, value in where.items():
            statement = statement.where(getattr(StoredObject, column) == value)
        return (await session.execute(statement)).scalar_one()


async def test_design_upload_stores_the_object_then_the_row(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    session_id = await _session_id(conns, committed)
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        stored = await _assets(session, conns).upload_design(
            committed.actor, session_id, io.BytesIO(HTML), content_type="text/html"
        )
    assert await _rows(conns, key=stored.key) == 1
    store = conns.require_store()
    async with httpx.AsyncClient() as client:
        assert (await client.get(store.presigned_url(stored.key))).content == HTML


async def test_unknown_session_stores_nothing(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    with pytest.raises(AiSessionNotFound):
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            await _assets(session, conns).upload_design(
                committed.actor, new_id(), io.BytesIO(HTML), content_type="text/html"
            )
    assert list(conns.require_store().iter_objects()) == []


async def test_unreachable_store_writes_nothing_to_the_database(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    session_id = await _session_id(conns, committed)
    dead = f"http://127.0.0.1:{free_port()}"
    broken = Connections(
        conns.settings,
        urls=StoreUrls(conns.urls.database_url, conns.urls.redis_url, dead),
        role=ProcessRole.TEST,
    )
    try:
        with pytest.raises(StoreUnavailable, match=dead):
            async with unit_of_work(broken.sessionmaker, broken.cache) as session:
                await _assets(session, broken).upload_design(
                    committed.actor, session_id, io.BytesIO(HTML), content_type="text/html"
                )
    finally:
        await broken.close()
    assert await _rows(conns, session_id=session_id) == 0


async def test_module_export_uploads_a_zip_and_presigns_it(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        template = await TemplateService(session, conns.cache).create(
            committed.actor,
            TemplateCreate(
                project_id=committed.project_id,
                name="Hero",
                html_content="<p/>",
                hubspot_config=hubspot_config(),
            ),
        )
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        export = await _assets(session, conns).export_module(
            committed.actor, template.id, upload=True, origin=CLI
        )
    assert export.key and export.url and export.filename == "hero.module.zip"
    async with httpx.AsyncClient() as client:
        response = await client.get(export.url)
    assert response.content == export.data
    # Named after the export (the stored object says hubspot-module.zip).
    assert response.headers["content-disposition"] == 'attachment; filename="hero.module.zip"'
    assert await _rows(conns, template_id=template.id) == 1


async def test_deleting_a_session_removes_its_objects_after_commit(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    session_id = await _session_id(conns, committed)
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        for _ in range(2):
            await _assets(session, conns).upload_design(
                committed.actor, session_id, io.BytesIO(HTML), content_type="text/html"
            )
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        await AiSessionService(session, conns.cache, conns.store).delete(
            committed.actor, session_id, origin=CLI
        )
    assert list(conns.require_store().iter_objects(f"designs/{session_id}/")) == []
    assert await _rows(conns, session_id=session_id) == 0


async def test_gc_finds_objects_no_row_references(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    session_id = await _session_id(conns, committed)
    store = conns.require_store()
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        kept = await _assets(session, conns).upload_design(
            committed.actor, session_id, io.BytesIO(HTML), content_type="text/html"
        )
    orphan = store.upload_design(
        session_id, io.BytesIO(HTML), content_type="text/html"
    )  # crash before the row
    await asyncio.sleep(1.1)
    async with conns.sessionmaker() as session:
        found = await _assets(session, conns).find_orphans(grace=timedelta(seconds=1))
        young = await _assets(session, conns).find_orphans(grace=timedelta(hours=1))
    assert [o.key for o in found] == [orphan.key]
    assert kept.key not in {o.key for o in found}
    assert young == []

"""GDPR erasure: nothing of the user is served afterwards, from the cache or the store."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

import pytest
from sqlalchemy import Text, cast, func, or_, select

from templator.ai_session.errors import AiSessionNotFound
from templator.ai_session.schemas import AiSessionCreate
from templator.ai_session.service import AiSessionService
from templator.audit.service import CLI, Origin
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.connections import Connections
from templator.dev.localstack.process import free_port
from templator.exceptions import Unauthorized
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.kit.pagination import PageParams
from templator.kit.uow import unit_of_work
from templator.models import AuditEntry, User, UserRole
from templator.project.schemas import ProjectCreate
from templator.project.service import ProjectService
from templator.storage.service import ObjectStore
from templator.stored_object.service import StoredObjectService
from templator.template.errors import TemplateNotFound
from templator.template.schemas import TemplateCreate
from templator.template.service import TemplateService
from templator.user.errors import UserNotFound
from templator.user.service import Erasure, UserService
from tests.support.factories import Committed, hubspot_config

ADMIN = Actor(new_id(), UserRole.ADMIN)
HTML = b"<!DOCTYPE html><html><body><h1>Landing</h1></body></html>"


async def _owned(conns: Connections, committed: Committed) -> tuple[list[str], list[str], str]:
    """Two projects, each with a session and a template, and a token of the user."""
    sids, tids = [], []
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        second = await ProjectService(session, conns.cache).create(
            committed.actor, ProjectCreate(name="Second")
        )
        for project_id in (committed.project_id, second.id):
            sids.append(
                (
                    await AiSessionService(session, conns.cache).create(
                        committed.actor, AiSessionCreate(project_id=project_id)
                    )
                ).id
            )
            template = await TemplateService(session, conns.cache).create(
                committed.actor,
                TemplateCreate(
                    project_id=project_id,
                    name="Hero",
                    html_content="<p/>",
                    hubspot_config=hubspot_config(),
                ),
            )
            tids.append(template.id)
        token = await TokenService(session, conns.cache).create(
            committed.actor.id, TokenCreate(name="laptop"), origin=CLI
        )
    return sids, tids, token.token


async def _erase(conns: Connections, user_id: str, store: ObjectStore | None = None) -> Erasure:
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        return await UserService(session, conns.cache, store).erase(user_id, origin=CLI)


async def test_erasure_drops_every_cached_entry_of_the_user(
    connections: Connections, committed: Committed
) -> None:
    conns = connections
    sids, tids, token = await _owned(conns, committed)
    async with conns.sessionmaker() as session:  # warm every cache entry
        assert (await TokenService(session, conns.cache).authenticate(token)).id == (
            committed.actor.id
        )
        for sid in sids:
            await AiSessionService(session, conns.cache).get_state(ADMIN, sid)
        for tid in tids:
            await TemplateService(session, conns.cache).get(ADMIN, tid)
        page = await ProjectService(session, conns.cache).list_for(
            ADMIN, committed.actor.id, PageParams()
        )
    assert len(page.items) == 2

    erasure = await _erase(conns, committed.actor.id)

    assert erasure.rows == {"projects": 2, "ai_sessions": 2, "templates": 2, "processing_logs": 0}
    async with conns.sessionmaker() as session:
        with pytest.raises(Unauthorized):
            await TokenService(session, conns.cache).authenticate(token)
        for sid in sids:
            with pytest.raises(AiSessionNotFound):
                await AiSessionService(session, conns.cache).get_state(ADMIN, sid)
        for tid in tids:
            with pytest.raises(TemplateNotFound):
                await TemplateService(session, conns.cache).get(ADMIN, tid)
        page = await ProjectService(session, conns.cache).list_for(
            ADMIN, committed.actor.id, PageParams()
        )
    assert page.items == []


async def test_erasing_an_unknown_user_is_not_found(connections: Connections) -> None:
    with pytest.raises(UserNotFound):
        await _erase(connections, new_id())


async def _objects(conns: Connections, committed: Committed) -> list[str]:
    """An uploaded design and an exported module of the user's."""
    sids, tids, _ = await _owned(conns, committed)
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        assets = StoredObjectService(session, conns.cache, conns.store)
        design = await assets.upload_design(
            committed.actor, sids[0], io.BytesIO(HTML), content_type="text/html"
        )
        module = await assets.export_module(committed.actor, tids[1], upload=True, origin=CLI)
    assert module.key is not None
    return [design.key, module.key]


def _stored_keys(conns: Connections) -> set[str]:
    return {o["key"] for o in conns.require_store().iter_objects()}


async def test_erasure_deletes_the_users_objects_after_commit(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    keys = await _objects(conns, committed)
    assert _stored_keys(conns) == set(keys)

    erasure = await _erase(conns, committed.actor.id, conns.store)

    assert (erasure.objects, erasure.objects_deleted, erasure.objects_left) == (2, 2, 0)
    assert _stored_keys(conns) == set()


async def test_a_rolled_back_erasure_keeps_the_user_and_their_objects(
    store_connections: Connections, committed: Committed
) -> None:
    conns = store_connections
    keys = await _objects(conns, committed)

    with pytest.raises(RuntimeError, match="after the erasure"):
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            await UserService(session, conns.cache, conns.store).erase(
                committed.actor.id, origin=CLI
            )
            raise RuntimeError("a later step fails after the erasure")

    assert _stored_keys(conns) == set(keys)
    async with conns.sessionmaker() as session:
        assert await session.get(User, committed.actor.id) is not None


async def test_a_store_failure_after_commit_leaves_the_erasure_standing_and_counted(
    store_connections: Connections, committed: Committed, caplog: pytest.LogCaptureFixture
) -> None:
    conns = store_connections
    keys = await _objects(conns, committed)
    dead = ObjectStore(conns.settings, endpoint_url=f"http://127.0.0.1:{free_port()}")

    with caplog.at_level(logging.ERROR, logger="templator.uow"):
        erasure = await _erase(conns, committed.actor.id, dead)

    assert "post-commit task failed" in caplog.text
    assert (erasure.objects, erasure.objects_deleted, erasure.objects_left) == (2, 0, 2)
    async with conns.sessionmaker() as session:
        assert await session.get(User, committed.actor.id) is None
        gc = StoredObjectService(session, conns.cache, conns.require_store())
        orphans = await gc.find_orphans(grace=timedelta(0))
    assert {o.key for o in orphans} == set(keys)


async def test_erasure_leaves_no_address_of_the_user_in_the_audit_trail(
    connections: Connections, committed: Committed
) -> None:
    conns, actor = connections, committed.actor
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        email = (await UserService(session, conns.cache).get(actor.id)).email
        await TokenService(session, conns.cache).create(
            actor.id, TokenCreate(name="mine"), origin=Origin(actor, "req-1")
        )
    async with conns.sessionmaker() as session:
        before = (
            (await session.execute(select(AuditEntry).where(AuditEntry.actor_id == actor.id)))
            .scalars()
            .all()
        )
    assert [entry.actor_email for entry in before] == [email]

    await _erase(conns, actor.id)

    async with conns.sessionmaker() as session:
        mentions = (
            await session.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    or_(
                        AuditEntry.actor_email == email,
                        cast(AuditEntry.details, Text).contains(email),
                    )
                )
            )
        ).scalar_one()
        kept = (
            (await session.execute(select(AuditEntry).where(AuditEntry.actor_id == actor.id)))
            .scalars()
            .all()
        )
    assert mentions == 0
    assert [(e.action, e.actor_email) for e in kept] == [("token.create", None)]

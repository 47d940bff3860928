"""Projects: ownership, cursor pages, and a cached list that is never stale."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from templator.audit.service import CLI
from templator.cache import Cache
from templator.connections import Connections
from templator.kit.actor import Actor
from templator.kit.pagination import PageParams
from templator.kit.uow import unit_of_work
from templator.models import AiSession, UserRole
from templator.models import Project as ProjectRow
from templator.project.errors import ProjectNotFound
from templator.project.schemas import ProjectCreate, ProjectUpdate
from templator.project.service import ProjectService
from tests.support.factories import Committed, actor_of, make_session, make_user


async def test_create_belongs_to_the_actor(db_session: AsyncSession, redis: Redis) -> None:
    owner = actor_of(await make_user(db_session))
    service = ProjectService(db_session, _cache(redis))

    project = await service.create(owner, ProjectCreate(name="Site", description="d"))

    assert project.user_id == owner.id
    assert (await service.get(owner, project.id)).name == "Site"


async def test_admin_may_create_for_another_owner_but_a_user_may_not(
    db_session: AsyncSession, redis: Redis
) -> None:
    owner = await make_user(db_session)
    admin = actor_of(await make_user(db_session, role=UserRole.ADMIN))
    other = actor_of(await make_user(db_session))
    service = ProjectService(db_session, _cache(redis))

    by_admin = await service.create(admin, ProjectCreate(name="A"), owner_id=owner.id)
    by_user = await service.create(other, ProjectCreate(name="B"), owner_id=owner.id)

    assert by_admin.user_id == owner.id
    assert by_user.user_id == other.id


async def test_another_users_project_is_not_found_but_admin_sees_it(
    db_session: AsyncSession, redis: Redis
) -> None:
    owner = actor_of(await make_user(db_session))
    stranger = actor_of(await make_user(db_session))
    admin = actor_of(await make_user(db_session, role=UserRole.ADMIN))
    service = ProjectService(db_session, _cache(redis))
    project = await service.create(owner, ProjectCreate(name="Mine"))

    with pytest.raises(ProjectNotFound, match=project.id):
        await service.get(stranger, project.id)
    with pytest.raises(ProjectNotFound):
        await service.update(stranger, project.id, ProjectUpdate(name="Theirs"))
    with pytest.raises(ProjectNotFound):
        await service.delete(stranger, project.id, origin=CLI)
    assert (await service.get(admin, project.id)).id == project.id


def test_names_over_200_characters_and_null_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="200"):
        ProjectCreate(name="x" * 201)
    with pytest.raises(ValidationError, match="name cannot be null"):
        ProjectUpdate(name=None)
    assert ProjectUpdate(description=None).model_dump(exclude_unset=True) == {"description": None}


async def test_update_changes_only_the_given_fields(db_session: AsyncSession, redis: Redis) -> None:
    owner = actor_of(await make_user(db_session))
    service = ProjectService(db_session, _cache(redis))
    project = await service.create(owner, ProjectCreate(name="Old", description="keep"))

    updated = await service.update(owner, project.id, ProjectUpdate(name="New"))

    assert (updated.name, updated.description) == ("New", "keep")


async def test_delete_cascades_to_the_projects_sessions(
    db_session: AsyncSession, redis: Redis
) -> None:
    owner = actor_of(await make_user(db_session))
    service = ProjectService(db_session, _cache(redis))
    project = await service.create(owner, ProjectCreate(name="Doomed"))
    await make_session(db_session, project=await db_session.get_one(ProjectRow, project.id))

    await service.delete(owner, project.id, origin=CLI)

    left = await db_session.scalar(select(func.count()).where(AiSession.project_id == project.id))
    assert left == 0
    with pytest.raises(ProjectNotFound):
        await service.get(owner, project.id)


async def test_pages_cover_every_project_once_newest_first(
    db_session: AsyncSession, redis: Redis
) -> None:
    owner = actor_of(await make_user(db_session))
    service = ProjectService(db_session, _cache(redis))
    created = [(await service.create(owner, ProjectCreate(name=f"p{i}"))).id for i in range(23)]

    seen: list[str] = []
    params = PageParams(limit=5)
    while True:
        page = await service.list_for(owner, owner.id, params)
        seen += [p.id for p in page.items]
        if page.next_cursor is None:
            break
        params = PageParams(limit=5, cursor=page.next_cursor)

    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == set(created)


async def test_a_user_cannot_list_another_users_projects(
    db_session: AsyncSession, redis: Redis
) -> None:
    owner = actor_of(await make_user(db_session))
    stranger = actor_of(await make_user(db_session))
    service = ProjectService(db_session, _cache(redis))
    await service.create(owner, ProjectCreate(name="private"))

    page = await service.list_for(stranger, owner.id, PageParams())

    assert page.items == [] and page.next_cursor is None


# The cache is invalidated after commit, so these tests commit for real (`committed`).


async def _list(connections: Connections, actor: Actor) -> list[str]:
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        page = await ProjectService(session, connections.cache).list_for(
            actor, actor.id, PageParams()
        )
    return [p.name for p in page.items]


async def test_the_first_page_is_served_from_the_cache_on_the_second_read(
    connections: Connections, committed: Committed, redis: Redis
) -> None:
    hits = connections.cache.stats.hits

    first = await _list(connections, committed.actor)
    second = await _list(connections, committed.actor)

    assert first == second == ["Committed project"]
    assert connections.cache.stats.hits == hits + 1


async def test_create_update_and_delete_each_invalidate_the_cached_list(
    connections: Connections, committed: Committed, redis: Redis
) -> None:
    actor, cache = committed.actor, connections.cache
    await _list(connections, actor)  # cached

    async with unit_of_work(connections.sessionmaker, cache) as session:
        new = await ProjectService(session, cache).create(actor, ProjectCreate(name="Second"))
    assert await _list(connections, actor) == ["Second", "Committed project"]

    async with unit_of_work(connections.sessionmaker, cache) as session:
        await ProjectService(session, cache).update(actor, new.id, ProjectUpdate(name="Renamed"))
    assert await _list(connections, actor) == ["Renamed", "Committed project"]

    async with unit_of_work(connections.sessionmaker, cache) as session:
        await ProjectService(session, cache).delete(actor, new.id, origin=CLI)
    assert await _list(connections, actor) == ["Committed project"]


async def test_interleaved_writers_and_readers_leave_the_cache_equal_to_the_database(
    connections: Connections, committed: Committed, redis: Redis
) -> None:
    actor, cache = committed.actor, connections.cache

    async def writer(i: int) -> None:
        async with unit_of_work(connections.sessionmaker, cache) as session:
            await ProjectService(session, cache).create(actor, ProjectCreate(name=f"w{i}"))

    await asyncio.gather(
        *(writer(i) if i % 3 == 0 else _list(connections, actor) for i in range(30))
    )

    cached = await _list(connections, actor)
    async with connections.sessionmaker() as session:
        fresh = await ProjectService(session, cache).repository.page_of_user(actor.id, PageParams())
    assert cached == [p.name for p in fresh.items]
    assert len(cached) == 11


def _cache(redis: Redis) -> Cache:
    return Cache(redis, namespace="templator-test", default_ttl=60)

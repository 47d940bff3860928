"""Shared fixtures: a migrated PostgreSQL database, Redis, and per-test isolation."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.migrations import runner
from templator.models import Project, User, UserRole
from tests.support import servers
from tests.support.factories import Committed

pytest_plugins = ["tests.plugins.s3"]


def _redis_db() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return 1 + int(worker) % 15 if worker.isdigit() else 1


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database made for this test session by running every migration."""
    name, url = servers.create_database()
    try:
        runner.upgrade(url)
        yield url
    finally:
        servers.drop_database(name)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis of this test process's own: a private redis-server, or, when
    `TEST_REDIS_URL` names a server, a database number of this worker's own on it."""
    if servers.REDIS_URL is not None:
        servers.assert_local(servers.REDIS_URL)
        yield f"{servers.REDIS_URL.rstrip('/')}/{_redis_db()}"
        return
    server = servers.PrivateRedis(free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings pointing at the test servers."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=redis_url,
        cache_namespace="templator-test",
        var_dir=tmp_path_factory.mktemp("var"),
        # Every test client has one address; the limit has tests of its own.
        auth_failure_limit=1_000_000,
        # One key for every connection layer of the session, as one deployment has.
        cache_signing_key="test-cache-signing-key-" + "k" * 32,
    )


@pytest.fixture(scope="session")
async def connections(settings: Settings) -> AsyncIterator[Connections]:
    """One connection layer for the whole session, as the app would hold it."""
    assert settings.database_url is not None and settings.redis_url is not None
    urls = StoreUrls(settings.database_url, settings.redis_url, settings.s3_endpoint_url)
    conns = Connections(settings, urls=urls, role=ProcessRole.TEST)
    yield conns
    await conns.close()


@pytest.fixture
async def db_connection(connections: Connections) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    async with connections.engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
async def db_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """An ORM session whose commits become savepoints of the rolled-back outer transaction."""
    session = AsyncSession(
        bind=db_connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
async def redis(connections: Connections) -> AsyncIterator[Redis]:
    """The session's Redis client on an emptied database."""
    await connections.redis.flushdb()
    yield connections.redis
    await connections.redis.flushdb()


@pytest.fixture
async def committed(connections: Connections) -> AsyncIterator[Committed]:
    """A user and a project committed for real, for tests that commit (races, cache)."""
    user_id, project_id = new_id(), new_id()
    async with connections.sessionmaker() as session:
        session.add(User(id=user_id, email=f"{user_id}@example.com", role=UserRole.USER))
        await session.flush()
        session.add(Project(id=project_id, user_id=user_id, name="Committed project"))
        await session.commit()
    yield Committed(Actor(user_id, UserRole.USER), project_id)
    async with connections.sessionmaker() as session:
        await session.execute(delete(User).where(User.id == user_id))
        await session.commit()

"""/health/ready fails while the database's schema is behind the code's migrations."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from templator.app import create_app
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port
from templator.health.schema import SchemaCheck
from templator.migrations import runner
from tests.support import servers


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database of this test's own."""
    name, url = servers.create_database("templator_schema")
    try:
        yield url
    finally:
        servers.drop_database(name)


async def _ready(settings: Settings, url: str) -> httpx.Response:
    assert settings.redis_url
    conf = settings.model_copy(update={"database_url": url, "db_read_pool_size": 0})
    conns = Connections(conf, urls=StoreUrls(url, settings.redis_url, None), role=ProcessRole.TEST)
    app = create_app(conf, connections=conns)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get("/health/ready")
    finally:
        await conns.close()


async def test_unmigrated_database_is_not_ready(settings: Settings, fresh_database: str) -> None:
    response = await _ready(settings, fresh_database)
    assert response.status_code == 503
    schema = response.json()["components"]["schema"]
    assert schema["status"] == "down" and "never migrated" in schema["error"]


async def test_database_one_revision_behind_is_not_ready(
    settings: Settings, fresh_database: str
) -> None:
    runner.upgrade(fresh_database, "head")
    runner.downgrade(fresh_database, "-1")
    response = await _ready(settings, fresh_database)
    assert response.status_code == 503
    error = response.json()["components"]["schema"]["error"]
    assert runner.head_revision() in error and "templator db migrate" in error


async def test_migrated_database_is_ready(settings: Settings, fresh_database: str) -> None:
    runner.upgrade(fresh_database)
    response = await _ready(settings, fresh_database)
    assert response.status_code == 200, response.text
    details = response.json()["components"]["schema"]["details"]
    assert details["revision"] == [runner.head_revision()]


async def test_revision_is_read_once_then_cached(settings: Settings) -> None:
    """Once at head, the check answers from memory until its TTL passes."""
    assert settings.database_url
    check = SchemaCheck(ttl=60)
    live = create_async_engine(settings.database_url)
    dead = create_async_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    try:
        await check.probe(live)
        # An engine that cannot connect would fail a query: the cached answer needs none.
        assert (await check.probe(dead))["head"] == runner.head_revision()
        expired = SchemaCheck(ttl=0)
        await expired.probe(live)
        with pytest.raises(OperationalError):
            await expired.probe(dead)
    finally:
        await live.dispose()
        await dead.dispose()


def test_the_scripts_head_agrees_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    from templator.health.revisions import script_revisions
    from templator.migrations.runner import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config("postgresql+psycopg://unused"))
    head, known = script_revisions()
    assert head == scripts.get_current_head()
    assert known == {rev.revision for rev in scripts.walk_revisions()}

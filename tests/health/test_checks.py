"""Health reports each component on its own: one store down never hides or fakes another."""

from __future__ import annotations

from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.health.checks import Status
from tests.plugins.s3 import s3_settings


async def _report(settings: Settings, urls: StoreUrls) -> dict[str, Status]:
    conns = Connections(settings, urls=urls, role=ProcessRole.TEST)
    try:
        report = await conns.health(timeout=3)
    finally:
        await conns.close()
    return {c.name: c.status for c in report.components}


async def test_all_up(settings: Settings, s3_server: SeaweedFS) -> None:
    conf = s3_settings(s3_server, database_url=settings.database_url, redis_url=settings.redis_url)
    assert conf.database_url and conf.redis_url
    urls = StoreUrls(conf.database_url, conf.redis_url, s3_server.endpoint_url)
    conns = Connections(conf, urls=urls, role=ProcessRole.TEST)
    assert conns.store is not None
    conns.store.ensure_bucket()
    report = await conns.health()
    await conns.close()
    assert {c.name: c.status for c in report.components} == {
        "postgres": Status.UP,
        "redis": Status.UP,
        "object_store": Status.UP,
        "schema": Status.UP,
    }
    assert report.healthy


async def test_redis_down_leaves_postgres_up(settings: Settings) -> None:
    assert settings.database_url
    dead = f"redis://127.0.0.1:{free_port()}/0"
    statuses = await _report(settings, StoreUrls(settings.database_url, dead, None))
    assert statuses == {"postgres": Status.UP, "redis": Status.DOWN, "schema": Status.UP}


async def test_postgres_down_leaves_redis_up(settings: Settings) -> None:
    assert settings.redis_url
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    statuses = await _report(settings, StoreUrls(dead, settings.redis_url, None))
    # The schema revision cannot be read either: not ready, for that reason too.
    assert statuses == {"postgres": Status.DOWN, "redis": Status.UP, "schema": Status.DOWN}


async def test_store_down_is_reported_with_its_endpoint(
    settings: Settings, s3_server: SeaweedFS
) -> None:
    assert settings.database_url and settings.redis_url
    endpoint = f"http://127.0.0.1:{free_port()}"
    conns = Connections(
        s3_settings(s3_server),
        urls=StoreUrls(settings.database_url, settings.redis_url, endpoint),
        role=ProcessRole.TEST,
    )
    report = await conns.health(timeout=5)
    await conns.close()
    store = next(c for c in report.components if c.name == "object_store")
    assert store.status is Status.DOWN and store.target == endpoint and store.error
    up = {c.name for c in report.components if c.status is Status.UP}
    assert up == {"postgres", "redis", "schema"}

"""A real S3 server for the tests: SeaweedFS (`weed mini`), started once per test session."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.storage.service import ObjectStore

ACCESS_KEY = "templator-test"
SECRET_KEY = "templator-test-secret"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedFS]:
    """SeaweedFS on free loopback ports, with data in a scratch folder."""
    folder = PROJECT_ROOT / "var" / f"test-s3-{uuid.uuid4().hex[:8]}"
    server = SeaweedFS(folder, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def s3_settings(server: SeaweedFS, **overrides: object) -> Settings:
    """Settings pointing at the test S3 server."""
    values: dict[str, object] = {
        "s3_endpoint_url": server.endpoint_url,
        "s3_access_key": ACCESS_KEY,
        "s3_secret_key": SECRET_KEY,
        "s3_bucket": f"test-{uuid.uuid4().hex[:12]}",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


@pytest.fixture
def object_store(s3_server: SeaweedFS) -> Iterator[ObjectStore]:
    """A store on a fresh bucket of the test's own, created with its policy."""
    store = ObjectStore.from_settings(s3_settings(s3_server), endpoint_url=s3_server.endpoint_url)
    store.ensure_bucket()
    yield store
    store.delete_many([o["key"] for o in store.iter_objects()])
    store.client.delete_bucket(Bucket=store.bucket)


@pytest.fixture
async def store_connections(settings: Settings, s3_server: SeaweedFS) -> AsyncIterator[Connections]:
    """The connection layer with PostgreSQL, Redis and a fresh bucket on the S3 server."""
    conf = s3_settings(
        s3_server,
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        cache_namespace=settings.cache_namespace,
        auth_failure_limit=settings.auth_failure_limit,
        cache_signing_key=settings.cache_signing_key,
    )
    assert conf.database_url and conf.redis_url
    conns = Connections(
        conf,
        urls=StoreUrls(conf.database_url, conf.redis_url, s3_server.endpoint_url),
        role=ProcessRole.TEST,
    )
    store = conns.require_store()
    store.ensure_bucket()
    yield conns
    store.delete_many([o["key"] for o in store.iter_objects()])
    store.client.delete_bucket(Bucket=store.bucket)
    await conns.close()

"""A restore checks every store first, and names what it restored when a later stage fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from templator.backup import create, restore
from templator.backup.crypto import BackupKey
from templator.backup.errors import BackupStoreUnreachable, RestoreIncomplete
from templator.backup.set_store import FolderRepository
from templator.connections import StoreUrls
from templator.dev.localstack.redis import LocalRedis
from templator.dev.localstack.seaweedfs import SeaweedFS
from tests.backup.conftest import Stores, add_user, emails, make_stores


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A Redis server of this test's own, which it may stop."""
    server = LocalRedis(tmp_path / "redis")
    server.start()
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture
def stores_on_private_redis(
    private_redis: LocalRedis, s3_server: SeaweedFS, tmp_path: Path
) -> Iterator[Stores]:
    """The three stores, Redis being the test's own server."""
    yield from make_stores(private_redis.url, s3_server, tmp_path / "var")


def test_an_unreachable_store_is_found_before_anything_changes(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_user(stores, "before@example.com")
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key)
    add_user(stores, "after@example.com")
    dead = StoreUrls(stores.urls.database_url, "redis://127.0.0.1:1/0", stores.urls.s3_endpoint_url)
    with pytest.raises(BackupStoreUnreachable, match="Redis is unreachable"):
        restore.restore_backup(stores.settings, dead, repo, manifest.name, key=key)
    assert emails(stores) == {"before@example.com", "after@example.com"}


def test_a_failure_after_postgres_names_the_restored_stores_and_the_fix(
    stores_on_private_redis: Stores,
    private_redis: LocalRedis,
    repo: FolderRepository,
    key: BackupKey,
) -> None:
    stores = stores_on_private_redis
    add_user(stores, "before@example.com")
    stores.redis.set("bak-test:k", b"v")
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key)
    add_user(stores, "after@example.com")

    def stop_redis_after_postgres(stage: str, advance: int, total: int | None) -> None:
        if stage == "postgres" and total == -1:
            private_redis.stop()

    with pytest.raises(RestoreIncomplete) as caught:
        restore.restore_backup(
            stores.settings,
            stores.urls,
            repo,
            manifest.name,
            key=key,
            progress=stop_redis_after_postgres,
        )
    message = caught.value.message
    assert "restored postgres; redis failed" in message
    assert "not restored: redis, objects" in message
    assert f"templator backup restore {manifest.name} --only redis,objects --yes" in message
    assert emails(stores) == {"before@example.com"}

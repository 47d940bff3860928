"""Backups capture PostgreSQL and Redis, verify their checksums, and restore as a whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from redis import Redis

from templator.backup import service
from templator.backup.errors import BackupCorrupt, BackupNotFound, BackupToolFailed
from templator.config import Settings
from templator.connections import StoreUrls
from templator.migrations import runner
from tests.support import servers


@pytest.fixture
def scratch(redis_url: str) -> Iterator[tuple[Settings, StoreUrls]]:
    """A migrated database of the test's own and the worker's Redis database."""
    name, url = servers.create_database("templator_bak")
    runner.upgrade(url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        redis_url=redis_url,
        cache_namespace="bak-test",
    )
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield settings, StoreUrls(url, redis_url, None)
    client.flushdb()
    client.close()
    servers.drop_database(name)


def _add_user(url: str, email: str) -> None:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute(
            "INSERT INTO users (id, email) VALUES (substr(md5(random()::text), 1, 25), %s)",
            (email,),
        )


def _emails(url: str) -> set[str]:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        return {row[0] for row in conn.execute("SELECT email FROM users").fetchall()}


def test_backup_then_restore_brings_back_rows_and_cache_keys(
    scratch: tuple[Settings, StoreUrls], tmp_path: Path
) -> None:
    settings, urls = scratch
    _add_user(urls.database_url, "kept@example.com")
    cache = Redis.from_url(urls.redis_url)
    cache.set("bak-test:template:1", b"cached", ex=600)
    cache.set("other-app:key", b"not ours")

    folder, manifest = service.create_backup(settings, urls, root=tmp_path)
    assert manifest.redis["keys"] == 1
    assert {f.path for f in manifest.files} == {"postgres.dump", "redis.jsonl"}

    _add_user(urls.database_url, "added-later@example.com")
    cache.flushdb()

    service.restore_backup(settings, urls, folder)
    assert _emails(urls.database_url) == {"kept@example.com"}
    assert cache.get("bak-test:template:1") == b"cached"
    assert 0 < cache.ttl("bak-test:template:1") <= 600
    assert cache.get("other-app:key") is None
    cache.close()


def test_a_tampered_backup_is_refused_before_anything_is_restored(
    scratch: tuple[Settings, StoreUrls], tmp_path: Path
) -> None:
    settings, urls = scratch
    _add_user(urls.database_url, "before@example.com")
    folder, _ = service.create_backup(settings, urls, root=tmp_path)
    _add_user(urls.database_url, "after@example.com")
    with (folder / "postgres.dump").open("ab") as dump:
        dump.write(b"garbage")
    with pytest.raises(BackupCorrupt, match=r"postgres\.dump does not match its checksum"):
        service.restore_backup(settings, urls, folder)
    assert _emails(urls.database_url) == {"before@example.com", "after@example.com"}


def test_a_failed_backup_leaves_no_folder_behind(
    scratch: tuple[Settings, StoreUrls], tmp_path: Path
) -> None:
    settings, urls = scratch
    broken = StoreUrls(urls.database_url.rsplit("/", 1)[0] + "/no_such_db", urls.redis_url, None)
    with pytest.raises((BackupToolFailed, psycopg.OperationalError)):
        service.create_backup(settings, broken, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_list_and_prune_keep_the_newest(
    scratch: tuple[Settings, StoreUrls], tmp_path: Path
) -> None:
    settings, urls = scratch
    folder, manifest = service.create_backup(settings, urls, root=tmp_path, include_redis=False)
    assert [m.name for m in service.list_backups(tmp_path)] == [manifest.name]
    assert service.prune_backups(tmp_path, older_than=timedelta(0), keep=1) == []
    assert service.prune_backups(tmp_path, older_than=timedelta(0), keep=0) == [manifest.name]
    assert not folder.exists()


def test_unknown_backup_name_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(BackupNotFound, match="no backup 'nope'"):
        service.resolve_backup(tmp_path, "nope")

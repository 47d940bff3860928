"""A set brings back every store exactly, as a mirror, and copies objects incrementally."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from templator.backup import catalog, create, restore
from templator.backup.crypto import BackupKey
from templator.backup.set_store import FolderRepository
from tests.backup.conftest import Stores, add_object, add_user, emails


def test_restore_is_a_mirror_of_the_set(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_user(stores, "kept@example.com")
    add_object(stores, "designs/s1/a.png", b"\x89PNG kept")
    stores.redis.set("bak-test:template:1", b"cached", ex=600)
    stores.redis.set("other-app:key", b"not ours")
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key)
    assert manifest.redis["keys"] == 1
    assert manifest.objects["objects"] == 1

    add_user(stores, "added-later@example.com")
    stores.sql("CREATE TABLE created_later (id int)")
    add_object(stores, "designs/s2/later.png", b"later")
    stores.redis.set("bak-test:template:2", b"later")
    stores.redis.delete("bak-test:template:1")

    report = restore.restore_backup(stores.settings, stores.urls, repo, "latest", key=key)
    assert report.restored == ["postgres", "redis", "objects"]
    assert emails(stores) == {"kept@example.com"}
    assert stores.sql("SELECT to_regclass('created_later')") == [(None,)]
    assert stores.redis.get("bak-test:template:1") == b"cached"
    assert 0 < stores.redis.ttl("bak-test:template:1") <= 600
    assert stores.redis.get("bak-test:template:2") is None
    assert stores.redis.get("other-app:key") == b"not ours"
    assert stores.keys() == {"designs/s1/a.png"}
    head = stores.s3.head_object(Bucket=stores.settings.s3_bucket, Key="designs/s1/a.png")  # type: ignore[attr-defined]
    assert head["ContentType"] == "image/png"
    assert head["Metadata"] == {"origin": "test"}
    assert report.rows_missing_objects == 0
    assert (
        manifest.alembic_revision
        and catalog.resolve(repo, "latest", key).alembic_revision == manifest.alembic_revision
    )


@pytest.mark.parametrize(
    "layout",
    [
        {"index.json": b'{"not": "the backup index"}', "objects.index": b"mine"},
        {"x": b"file x", "x/y": b"file under x"},
        {"dir/": b"", "dir/f": b"inside dir"},
    ],
    ids=["index-json", "x-beside-x-slash-y", "dir-marker-beside-dir-f"],
)
def test_awkward_object_keys_are_restored_byte_exact(
    stores: Stores, repo: FolderRepository, key: BackupKey, layout: dict[str, bytes]
) -> None:
    for name, body in layout.items():
        stores.put(name, body)
    time.sleep(1.1)  # unreferenced objects count from the second before the snapshot
    create.create_backup(stores.settings, stores.urls, repo, key=key)
    for name in layout:
        stores.s3.delete_object(Bucket=stores.settings.s3_bucket, Key=name)  # type: ignore[attr-defined]
    stores.put("intruder", b"created after")
    restore.restore_backup(stores.settings, stores.urls, repo, "latest", key=key)
    assert stores.keys() == set(layout)
    for name, body in layout.items():
        assert stores.get(name) == body


def test_a_second_backup_copies_only_changed_objects(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    for i in range(20):
        add_object(stores, f"designs/s/{i}.png", bytes([i]) * 1000)
    first = create.create_backup(stores.settings, stores.urls, repo, key=key)
    assert (first.objects["copied"], first.objects["reused"]) == (20, 0)
    stores.put("designs/s/3.png", b"changed" * 10)
    add_object(stores, "designs/s/new.png", b"new")
    second = create.create_backup(stores.settings, stores.urls, repo, key=key)
    assert (second.objects["copied"], second.objects["reused"]) == (2, 19)
    assert second.objects["copied_bytes"] == 70 + 3
    stores.s3.delete_object(Bucket=stores.settings.s3_bucket, Key="designs/s/5.png")  # type: ignore[attr-defined]
    restore.restore_backup(
        stores.settings, stores.urls, repo, second.name, key=key, only={"objects"}
    )
    assert stores.get("designs/s/3.png") == b"changed" * 10
    assert stores.get("designs/s/5.png") == bytes([5]) * 1000


def test_a_set_holds_what_its_snapshot_refers_to(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    """An object uploaded after the snapshot that no row of the set refers to is left out."""
    add_object(stores, "designs/s/before.png", b"before")
    seen: list[str] = []

    def on_progress(stage: str, advance: int, total: int | None) -> None:
        if stage == "redis" and not seen:  # the snapshot is taken, pg_dump not yet run
            seen.append(stage)
            add_user(stores, "after-snapshot@example.com")
            add_object(stores, "designs/s/after.png", b"after")

    manifest = create.create_backup(
        stores.settings, stores.urls, repo, key=key, progress=on_progress
    )
    assert seen
    assert manifest.objects["objects"] == 1
    restore.restore_backup(stores.settings, stores.urls, repo, manifest.name, key=key)
    assert "after-snapshot@example.com" not in emails(stores)
    assert stores.keys() == {"designs/s/before.png"}


def test_restore_into_another_database_leaves_the_original(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_user(stores, "one@example.com")
    manifest = create.create_backup(
        stores.settings, stores.urls, repo, key=key, include_objects=False, include_redis=False
    )
    add_user(stores, "two@example.com")
    target = f"{stores.name}_copy"
    try:
        restore.restore_backup(
            stores.settings, stores.urls, repo, manifest.name, key=key, target_database=target
        )
        assert emails(stores, target) == {"one@example.com"}
        assert emails(stores) == {"one@example.com", "two@example.com"}
    finally:
        from templator.backup import pg_logical

        pg_logical.drop_database(stores.urls.database_url, target)


def test_unknown_set_is_not_found(repo: FolderRepository) -> None:
    from templator.backup.errors import BackupNotFound

    with pytest.raises(BackupNotFound, match="no backup 'nope'"):
        catalog.resolve(repo, "nope")
    with pytest.raises(BackupNotFound, match="no intact backup"):
        catalog.resolve(repo, "latest")


def test_files_are_private(
    stores: Stores, repo: FolderRepository, key: BackupKey, tmp_path: Path
) -> None:
    add_object(stores, "designs/s/a.png", b"a")
    create.create_backup(stores.settings, stores.urls, repo, key=key)
    for path in [repo.root, *repo.root.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_redis_keys_in_many_batches_come_back_with_their_ttls(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    with stores.redis.pipeline(transaction=False) as pipe:
        for i in range(5000):
            pipe.set(f"bak-test:k{i}", f"value-{i}".encode(), ex=900 if i % 2 else None)
        pipe.hset("bak-test:hash", mapping={"a": "1", "b": "2"})
        pipe.execute()
    manifest = create.create_backup(
        stores.settings, stores.urls, repo, key=key, include_objects=False
    )
    assert manifest.redis["keys"] == 5001
    stores.redis.flushdb()
    stores.redis.set("bak-test:stray", b"created after")
    restore.restore_backup(
        stores.settings, stores.urls, repo, manifest.name, key=key, only={"redis"}
    )
    assert stores.redis.dbsize() == 5001
    assert stores.redis.get("bak-test:k4999") == b"value-4999"
    assert 0 < stores.redis.ttl("bak-test:k1") <= 900 and stores.redis.ttl("bak-test:k2") == -1
    assert stores.redis.hgetall("bak-test:hash") == {b"a": b"1", b"b": b"2"}

"""`verify --drill` restores into scratch copies, compares content, records the RTO."""

from __future__ import annotations

import psycopg

from templator.backup import catalog, create, restore, scratch
from templator.backup.crypto import BackupKey
from templator.backup.set_store import FolderRepository
from tests.backup.conftest import Stores, add_object, add_user


def test_a_drill_passes_on_a_good_set_and_leaves_no_scratch_copies(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_user(stores, "drill@example.com")
    add_object(stores, "designs/s/a.png", b"drill object")
    stores.redis.set("bak-test:k1", b"one", ex=300)
    stores.redis.set("bak-test:k2", b"two")
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key)
    assert manifest.database["tables"]["public.users"][0] == 1

    result = restore.drill(stores.settings, stores.urls, repo, manifest.name, key=key)
    assert result["ok"], result["problems"]
    assert result["seconds"] > 0 and result["tables"] == len(manifest.database["tables"])
    assert catalog.read_drills(repo, manifest.name)[-1]["ok"] is True
    with psycopg.connect(stores.dsn) as conn:
        scratch = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'templator_drill_%'"
        ).fetchall()
    assert scratch == []
    assert sorted(stores.redis.keys("*")) == [b"bak-test:k1", b"bak-test:k2"]
    catalog.verify(repo, manifest.name, key)  # the recorded result does not break the seal


def test_a_drill_restores_objects_under_its_own_prefix_and_leaves_none_behind(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_object(stores, "designs/s/a.png", b"drilled object")
    prefix = scratch.object_prefix(repo)
    stores.put(prefix + "designs/s/stale.png", b"left by a killed drill")
    stores.redis.set(scratch.redis_prefix(repo) + "bak-test:stale", b"left by a killed drill")
    stores.redis.set("bak-test:k", b"v")
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key)
    assert manifest.objects["objects"] == 1, "a drill's scratch object is never part of a set"
    seen: set[str] = set()

    def during(stage: str, advance: int, total: int | None) -> None:
        if stage == "objects" and advance > 0:
            bucket = stores.keys()
            seen.update(k for k in bucket if k.startswith(prefix))

    result = restore.drill(
        stores.settings, stores.urls, repo, manifest.name, key=key, progress=during
    )

    assert result["ok"], result["problems"]
    assert seen == {prefix + "designs/s/a.png"}, "the object was restored under the prefix"
    assert stores.keys() == {"designs/s/a.png"}
    assert sorted(stores.redis.keys("*")) == [b"bak-test:k"]

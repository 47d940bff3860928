"""`verify --drill` restores into scratch copies, compares content, records the RTO."""

from __future__ import annotations

import psycopg

from templator.backup import catalog, create, restore
from templator.backup.crypto import BackupKey
from templator.backup.repository import FolderRepository
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

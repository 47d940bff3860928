"""A repository in an S3 bucket under a prefix works like a folder one."""

from __future__ import annotations

import uuid

import pytest

from templator.backup import catalog, create, restore, retention
from templator.backup.crypto import BackupKey
from templator.backup.errors import BackupCorrupt
from templator.backup.set_store import S3Repository, open_repository
from tests.backup.conftest import Stores, add_object, add_user, emails


def test_sets_in_an_s3_prefix_are_created_verified_restored_and_pruned(
    stores: Stores, key: BackupKey
) -> None:
    bucket = f"bak-repo-{uuid.uuid4().hex[:8]}"
    stores.s3.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    settings = stores.settings.model_copy(update={"backup_repository": f"s3://{bucket}/offsite/a"})
    repo = open_repository(settings)
    assert isinstance(repo, S3Repository)
    try:
        add_user(stores, "s3@example.com")
        add_object(stores, "designs/s/a.png", b"object in s3 repo")
        first = create.create_backup(settings, stores.urls, repo, key=key)
        second = create.create_backup(settings, stores.urls, repo, key=key)
        assert second.objects["reused"] == 1
        assert [s.name for s in catalog.list_sets(repo, key)] == [second.name, first.name]
        catalog.verify(repo, second.name, key)
        add_user(stores, "later@example.com")
        restore.restore_backup(settings, stores.urls, repo, "latest", key=key)
        assert emails(stores) == {"s3@example.com"}
        assert stores.get("designs/s/a.png") == b"object in s3 repo"

        rel = f"offsite/a/{second.name}/redis.bin"
        body = bytearray(stores.s3.get_object(Bucket=bucket, Key=rel)["Body"].read())  # type: ignore[attr-defined]
        body[-1] ^= 1
        stores.s3.put_object(Bucket=bucket, Key=rel, Body=bytes(body))  # type: ignore[attr-defined]
        with pytest.raises(BackupCorrupt, match=r"redis\.bin does not match its checksum"):
            catalog.verify(repo, second.name, key)

        stores.s3.put_object(
            Bucket=bucket, Key="offsite/a/templator-20000101T000000000Z/redis.bin", Body=b"x"
        )  # type: ignore[attr-defined]
        assert repo.leftovers() == ["templator-20000101T000000000Z"]
        retention.prune(repo, retention.Policy(last=1, daily=0, weekly=0, monthly=0), key=key)
        assert repo.leftovers() == []
        assert [s.name for s in catalog.list_sets(repo, key)] == [second.name]
    finally:
        pages = stores.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)  # type: ignore[attr-defined]
        for page in pages:
            for item in page.get("Contents", []):
                stores.s3.delete_object(Bucket=bucket, Key=item["Key"])  # type: ignore[attr-defined]
        stores.s3.delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]

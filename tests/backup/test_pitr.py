"""Point-in-time recovery through pgBackRest on an embedded PostgreSQL the test starts."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pytest

from templator.backup import create, restore, retention
from templator.backup.crypto import BackupKey
from templator.backup.pgbackrest import Pitr, for_server
from templator.backup.set_store import FolderRepository
from templator.config import PROJECT_ROOT
from templator.dev.localstack.postgres import LocalPostgres
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.migrations import runner
from tests.backup.conftest import Stores, add_object, add_user, emails, make_stores

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="pgbackrest not installed"),
]


@pytest.fixture
def embedded(redis_url: str, s3_server: SeaweedFS) -> Iterator[tuple[Stores, LocalPostgres]]:
    """The three stores, PostgreSQL being an embedded server archiving through pgBackRest."""
    var = PROJECT_ROOT / "var" / f"test-pitr-{uuid.uuid4().hex[:8]}"
    server = LocalPostgres(var / "postgres", socket_dir=var / "run")
    server.start()
    try:
        server.wait_ready()
        runner.upgrade(server.admin_url)
        generator = make_stores(redis_url, s3_server, var, database_url=server.admin_url)
        stores = next(generator)
        yield stores, server
        generator.close()
    finally:
        server.stop()
        shutil.rmtree(var, ignore_errors=True)


def _wait_archived(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        switched = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]  # type: ignore[index]
            if last is not None and str(last)[8:] >= str(switched)[8:]:
                return
            time.sleep(0.2)
    raise AssertionError(f"{switched} was not archived within 60 s")


def test_restore_to_a_time_keeps_what_came_before_and_drops_what_came_after(
    embedded: tuple[Stores, LocalPostgres], repo: FolderRepository, key: BackupKey
) -> None:
    stores, server = embedded
    pitr = for_server(stores.settings, stores.urls, server=server)
    assert isinstance(pitr, Pitr), "the embedded server must be driven by pgBackRest"
    pitr.kind = "full"
    add_user(stores, "base@example.com")
    _wait_archived(stores.dsn)  # archiving works from the start, before any base backup
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key, pitr=pitr)
    assert manifest.database["method"] == "pgbackrest" and manifest.database["label"]
    drilled = restore.drill(stores.settings, stores.urls, repo, manifest.name, key=key, pitr=pitr)
    assert drilled["ok"], drilled["problems"]

    add_user(stores, "a@example.com")
    add_object(stores, "designs/s/a.png", b"written before T")
    time.sleep(0.5)
    with psycopg.connect(stores.dsn) as conn:
        moment: datetime = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    time.sleep(0.5)
    add_user(stores, "b@example.com")
    add_object(stores, "designs/s/b.png", b"written after T")
    _wait_archived(stores.dsn)
    lag = pitr.archive_lag()
    assert lag is not None and lag >= 0

    report = restore.restore_backup(
        stores.settings, stores.urls, repo, manifest.name, key=key, to_time=moment, pitr=pitr
    )
    assert report.restored == ["postgres", "redis", "objects"]
    assert emails(stores) == {"base@example.com", "a@example.com"}
    assert stores.keys() == {"designs/s/a.png"}, "rows of the window keep their objects"
    assert report.rows_missing_objects == 0

    kept = retention.prune(repo, retention.Policy(last=1, daily=0, weekly=0, monthly=0), key=key)
    assert kept.delete == []
    assert pitr.expire([manifest]) == []


def test_a_restore_to_a_time_finds_an_object_deleted_since_in_a_later_set(
    embedded: tuple[Stores, LocalPostgres], repo: FolderRepository, key: BackupKey
) -> None:
    stores, server = embedded
    pitr = for_server(stores.settings, stores.urls, server=server)
    assert isinstance(pitr, Pitr)
    pitr.kind = "full"
    first = create.create_backup(stores.settings, stores.urls, repo, key=key, pitr=pitr)
    add_object(stores, "designs/s/short-lived.png", b"uploaded after the first set")
    time.sleep(0.5)
    with psycopg.connect(stores.dsn) as conn:
        moment: datetime = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    time.sleep(0.5)
    pitr.kind = "incr"
    later = create.create_backup(stores.settings, stores.urls, repo, key=key, pitr=pitr)
    assert later.objects["objects"] == 1
    # Its row is deleted and the object collected, as storage gc would, after the later set.
    stores.sql("DELETE FROM stored_objects WHERE key = 'designs/s/short-lived.png'")
    stores.s3.delete_object(Bucket=stores.settings.s3_bucket, Key="designs/s/short-lived.png")  # type: ignore[attr-defined]
    _wait_archived(stores.dsn)

    report = restore.restore_backup(
        stores.settings, stores.urls, repo, first.name, key=key, to_time=moment, pitr=pitr
    )

    assert report.objects["from_other_sets"] == 1
    assert report.rows_missing_objects == 0
    assert stores.get("designs/s/short-lived.png") == b"uploaded after the first set"

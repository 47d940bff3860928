"""Disaster drill: the embedded PostgreSQL is SIGKILLed and its data folder deleted under
a write load; `restore latest` brings back every write acknowledged at least the RPO
(60 s) before the crash.

Every server is the test's own: an embedded PostgreSQL archiving through pgBackRest, a
Redis, and the suite's SeaweedFS. The load runs for the RPO plus a margin, so some of
its writes must survive; the seconds lost and the restore time are recorded as test
properties (`-rP` or `--junitxml` shows them).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest

from templator.backup import create, restore
from templator.backup.crypto import BackupKey
from templator.backup.pgbackrest import Pitr, for_server
from templator.backup.set_store import FolderRepository
from templator.config import PROJECT_ROOT
from templator.dev.localstack.postgres import LocalPostgres
from templator.dev.localstack.redis import LocalRedis
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.migrations import runner
from tests.backup.conftest import Stores, add_object, add_user, emails, make_stores

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="pgbackrest not installed"),
]

RPO_SECONDS = 60.0
LOAD_MARGIN_SECONDS = 15.0  # load writes older than the RPO at the crash: must survive
LOAD_PAUSE_SECONDS = 0.02  # a steady load that leaves the shared cores to the others


@dataclass
class Stack:
    """The test's own servers and the three stores on them."""

    stores: Stores
    postgres: LocalPostgres
    redis: LocalRedis


@pytest.fixture
def stack(s3_server: SeaweedFS) -> Iterator[Stack]:
    """An embedded PostgreSQL (pgBackRest archiving), a Redis, a bucket: all fresh."""
    var = PROJECT_ROOT / "var" / f"test-disaster-{uuid.uuid4().hex[:8]}"
    postgres = LocalPostgres(var / "postgres", socket_dir=var / "run")
    redis = LocalRedis(var / "redis")
    try:
        postgres.start()
        redis.start()
        postgres.wait_ready()
        redis.wait_ready()
        runner.upgrade(postgres.admin_url)
        generator = make_stores(redis.url, s3_server, var, database_url=postgres.admin_url)
        try:
            yield Stack(next(generator), postgres, redis)
        finally:
            generator.close()
    finally:
        postgres.stop()
        postgres.kill_leftovers()
        redis.stop()
        shutil.rmtree(var, ignore_errors=True)


@dataclass
class WriteLoad:
    """Single-row commits in a thread; each acknowledged one is kept with its wall time."""

    stores: Stores
    acknowledged: list[tuple[str, float]] = field(default_factory=list)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Insert users (every 25th with an uploaded object) until stopped or cut off."""
        try:
            with psycopg.connect(self.stores.dsn, autocommit=True) as conn:
                index = 0
                while not self.stop.is_set():
                    email = f"load-{index}@example.com"
                    if index % 25 == 0:
                        key = f"designs/load/{index}.png"
                        self.stores.put(key, f"object {index}".encode(), ContentType="image/png")
                        with conn.transaction():
                            self._insert_user(conn, email)
                            conn.execute(
                                "INSERT INTO stored_objects (id, key, kind, size, content_type)"
                                " VALUES (%s, %s, 'design', %s, 'image/png')",
                                (uuid.uuid4().hex[:25], key, len(f"object {index}")),
                            )
                    else:
                        self._insert_user(conn, email)
                    self.acknowledged.append((email, time.time()))
                    index += 1
                    time.sleep(LOAD_PAUSE_SECONDS)
        except psycopg.Error as exc:  # the crash cuts the connection: the load ends there
            self.error = exc

    @staticmethod
    def _insert_user(conn: psycopg.Connection[object], email: str) -> None:
        conn.execute(
            "INSERT INTO users (id, email) VALUES (%s, %s)", (uuid.uuid4().hex[:25], email)
        )


def _crash(postgres: LocalPostgres) -> float:
    """SIGKILL the postmaster and every backend, delete the data folder; the crash time."""
    assert postgres.process is not None
    os.kill(postgres.process.pid, signal.SIGKILL)
    crashed_at = time.time()
    postgres.process.wait(timeout=10)
    postgres.kill_leftovers()
    shutil.rmtree(postgres.data)
    assert not postgres.data.exists()
    return crashed_at


def test_restore_latest_after_losing_the_data_folder_keeps_every_write_older_than_the_rpo(
    stack: Stack, repo: FolderRepository, key: BackupKey, record_property: pytest.RecordProperty
) -> None:
    stores, postgres = stack.stores, stack.postgres
    pitr = for_server(stores.settings, stores.urls, server=postgres)
    assert isinstance(pitr, Pitr), "the embedded server must archive through pgBackRest"
    with psycopg.connect(stores.dsn) as conn:
        row = conn.execute(
            "SELECT setting::int FROM pg_settings WHERE name = 'archive_timeout'"
        ).fetchone()
    assert row is not None and 0 < row[0] < RPO_SECONDS, "segments must switch within the RPO"
    add_user(stores, "base@example.com")
    add_object(stores, "designs/base.png", b"in the base backup")
    stores.redis.set("bak-test:cached", b"in the set")
    manifest = create.create_backup(stores.settings, stores.urls, repo, key=key, pitr=pitr)
    assert manifest.database["method"] == "pgbackrest"

    load = WriteLoad(stores)
    worker = threading.Thread(target=load.run, name="disaster-load", daemon=True)
    worker.start()
    deadline = time.monotonic() + RPO_SECONDS + LOAD_MARGIN_SECONDS
    while time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.5)
    assert worker.is_alive(), f"the write load stopped before the crash: {load.error}"
    crashed_at = _crash(postgres)
    worker.join(timeout=30)
    assert not worker.is_alive(), "the write load did not notice the crash"
    load.stop.set()

    started = time.monotonic()
    report = restore.restore_backup(
        stores.settings, stores.urls, repo, "latest", key=key, pitr=pitr
    )
    restore_seconds = time.monotonic() - started

    present = emails(stores)
    acknowledged = dict(load.acknowledged)
    must_survive = {e for e, at in acknowledged.items() if at <= crashed_at - RPO_SECONDS}
    lost = {e: at for e, at in acknowledged.items() if e not in present}
    seconds_lost = crashed_at - min(lost.values()) if lost else 0.0
    record_property("acknowledged_writes", len(acknowledged))
    record_property("lost_writes", len(lost))
    record_property("seconds_lost", round(seconds_lost, 1))
    record_property("restore_seconds", round(restore_seconds, 1))
    print(
        f"disaster drill: {len(lost)} of {len(acknowledged)} acknowledged writes lost "
        f"({seconds_lost:.1f} s before the crash); restore latest took {restore_seconds:.1f} s"
    )

    assert len(must_survive) > 100, "the load must have written well before the RPO window"
    assert must_survive <= present, sorted(must_survive - present)[:5]
    assert "base@example.com" in present
    assert seconds_lost <= RPO_SECONDS
    assert report.restored == ["postgres", "redis", "objects"]
    assert report.rows_missing_objects == 0
    assert stores.redis.get("bak-test:cached") == b"in the set"
    assert "designs/base.png" in set(stores.keys())

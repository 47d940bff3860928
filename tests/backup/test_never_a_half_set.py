"""No way to lose or corrupt a set: lock, supervised children, minimal tool environment."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from templator.backup import catalog, create, retention
from templator.backup.crypto import BackupKey
from templator.backup.errors import BackupConfigError, BackupInProgress
from templator.backup.set_store import FolderRepository
from templator.connections import StoreUrls
from tests.backup.conftest import Stores, add_object, add_user

NO_POLICY = retention.Policy(last=100, daily=0, weekly=0, monthly=0)


def _children_touching(path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(path) in cmdline and process.pid != os.getpid():
            found.append(process)
    return found


def test_prune_during_create_refuses_and_leaves_the_partial(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    add_user(stores, "a@example.com")
    refused: list[str] = []

    def during(stage: str, advance: int, total: int | None) -> None:
        if stage == "postgres" and not refused:
            with pytest.raises(BackupInProgress, match="backup prune refused") as caught:
                retention.prune(repo, NO_POLICY, key=key)
            refused.append(caught.value.message)
            assert repo.leftovers(), "the running create's .partial must still be there"

    manifest = create.create_backup(
        stores.settings, stores.urls, repo, key=key, include_objects=False, progress=during
    )
    assert refused and "backup create" in refused[0]
    catalog.verify(repo, manifest.name, key)


def test_sigkill_of_create_at_random_moments_never_leaves_a_bad_set_or_an_orphan(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    for i in range(20):
        add_object(stores, f"designs/s/{i}.bin", os.urandom(20_000))
    with stores.redis.pipeline() as pipe:
        for i in range(500):
            pipe.set(f"bak-test:k{i}", b"x" * 100)
        pipe.execute()
    started = time.monotonic()
    create.create_backup(stores.settings, stores.urls, repo, key=key)
    duration = time.monotonic() - started
    rng = random.Random(12)
    for _ in range(10):
        pid = os.fork()
        if pid == 0:  # the child is the `create` command
            try:
                create.create_backup(stores.settings, stores.urls, repo, key=key)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, duration))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        deadline = time.monotonic() + 5
        while _children_touching(repo.root) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _children_touching(repo.root) == [], "a child outlived the killed create"
    for info in catalog.list_sets(repo, key):
        assert info.manifest is not None, info.problem
        catalog.verify(repo, info.name, key)  # every listed set is whole
    pruned = retention.prune(repo, NO_POLICY, key=key)
    assert repo.leftovers() == []
    needed = {b.path for s in catalog.list_sets(repo, key) if s.manifest for b in s.manifest.blobs}
    assert {rel.rsplit("/", 1)[-1] for rel, _ in repo.files("blobs")} == needed
    assert pruned.delete == []


def test_pg_dump_gets_a_minimal_environment_with_the_tls_settings(
    stores: Stores, repo: FolderRepository, key: BackupKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_SECRET_KEY", "canary-secret-value")
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY_FILE", "/canary/key/path")
    url = stores.urls.database_url + "?sslmode=disable&application_name=x"
    urls = StoreUrls(url, stores.urls.redis_url, stores.urls.s3_endpoint_url)
    seen: dict[str, str] = {}
    ticks = 0
    # pg_dump waits for its ACCESS SHARE lock on users while this lock is held, so it
    # is certainly alive when a progress tick looks for it; the tick then releases it.
    holder = psycopg.connect(stores.dsn)
    holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")

    def during(stage: str, advance: int, total: int | None) -> None:
        nonlocal ticks
        if stage != "postgres" or holder.closed:
            return
        ticks += 1
        for process in psutil.Process().children(recursive=True):
            try:
                if process.name() == "pg_dump":
                    seen.update(process.environ())
                    seen["_argv"] = " ".join(process.cmdline())
                    break
            except psutil.Error:
                continue
        if seen or ticks > 300:  # found it, or a minute of ticks: let pg_dump go on
            holder.close()

    try:
        create.create_backup(
            stores.settings, urls, repo, key=key, include_objects=False, progress=during
        )
    finally:
        holder.close()
    assert seen, "pg_dump was never observed running"
    assert seen.get("PGSSLMODE") == "disable"
    assert "S3_SECRET_KEY" not in seen and "BACKUP_ENCRYPTION_KEY_FILE" not in seen
    assert "canary" not in " ".join(f"{k}={v}" for k, v in seen.items())
    assert set(seen) - {"_argv"} <= {
        "PATH",
        "LANG",
        "LC_ALL",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGAPPNAME",
        "PGCONNECT_TIMEOUT",
        "PGSSLMODE",
    }


def test_objects_are_never_skipped_silently_without_an_endpoint(
    stores: Stores, repo: FolderRepository, key: BackupKey
) -> None:
    urls = StoreUrls(stores.urls.database_url, stores.urls.redis_url, None)
    with pytest.raises(BackupConfigError, match="no object store endpoint resolves"):
        create.create_backup(stores.settings, urls, repo, key=key)
    assert repo.set_names() == [] and repo.leftovers() == []

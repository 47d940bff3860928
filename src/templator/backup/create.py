"""`backup create`: one consistent, sealed set of all three stores.

Order matters for consistency: the PostgreSQL snapshot is exported first and held; the
stored_objects keys it holds are pinned; Redis is read right after; pg_dump then reads
the exported snapshot (or pgBackRest takes its base backup), and the objects the set
takes are those pinned plus any older than the snapshot — an object uploaded after it,
that no row of the set refers to, is left out.

Every file is written through the cipher into a staging folder with mode 0600, fsynced,
and the set appears only with its manifest (see repository.py). The repository lock is
held throughout, so a prune can never remove the staging folder under a running create.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis as redis_lib

import templator
from templator.backup import catalog, objects, pg_logical, redis_dump
from templator.backup.catalog import Progress, Repo
from templator.backup.crypto import CHUNK, BackupKey, SealedWriter, load_key_file
from templator.backup.errors import BackupConfigError, BackupKeyError, BackupStoreUnreachable
from templator.backup.lock import repository_lock
from templator.backup.manifest import MANIFEST_NAME, FileEntry, Manifest
from templator.backup.objects import HashingFile
from templator.backup.set_store import PREFIX, S3Repository, private_dirs, s3_client_for
from templator.config import Settings
from templator.connections import StoreUrls
from templator.store_urls import with_store_keys

INDEX_NAME = "objects.index"
REDIS_NAME = "redis.bin"
PG_FOLDER = "postgres"


def load_key(settings: Settings) -> BackupKey | None:
    """The key of BACKUP_ENCRYPTION_KEY_FILE, None when unset."""
    path = settings.backup_encryption_key_file
    return load_key_file(path) if path is not None else None


def source_s3(settings: Settings, urls: StoreUrls) -> Any:
    """A client on the application's object store."""
    settings = with_store_keys(settings, urls)
    return s3_client_for(
        endpoint=urls.s3_endpoint_url,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        region=settings.s3_region,
        settings=settings,
    )


# Size and SHA-256 of each file as written, so the manifest needs no second read.
_Ledger = dict[Path, tuple[int, str]]


@contextmanager
def sealed_file(
    folder: Path, rel: str, key: BackupKey | None, ledger: _Ledger | None = None
) -> Iterator[SealedWriter]:
    """A new file of the set (0600), written through the cipher and fsynced on close."""
    path = folder / rel
    private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        stored = HashingFile(handle)
        writer = SealedWriter(key, stored)  # type: ignore[arg-type]
        yield writer
        writer.close()
        handle.flush()
        os.fsync(handle.fileno())
    if ledger is not None:
        ledger[path] = (stored.size, stored.digest.hexdigest())


def _seal_folder(
    plain: Path,
    dest: Path,
    key: BackupKey | None,
    advance: Callable[[int], None],
    ledger: _Ledger,
) -> None:
    """Encrypt every file of `plain` into `dest` (same names), removing each plaintext."""
    dest.mkdir(mode=0o700)
    for path in sorted(plain.iterdir()):
        with path.open("rb") as source, sealed_file(dest, path.name, key, ledger) as writer:
            while block := source.read(CHUNK):
                writer.write(block)
                advance(len(block))
        path.unlink()
    plain.rmdir()


def _entries(staging: Path, ledger: _Ledger) -> list[FileEntry]:
    entries = []
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        if path in ledger:
            size, sha = ledger[path]
            entries.append(FileEntry(str(path.relative_to(staging)), size, sha))
            continue
        digest = HashingFile(open(os.devnull, "wb"))  # noqa: SIM115 - closed below
        with path.open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.write(block)
        digest.handle.close()
        entries.append(
            FileEntry(str(path.relative_to(staging)), digest.size, digest.digest.hexdigest())
        )
    return entries


def _previous_index(
    repo: Repo, key: BackupKey | None, work: Path
) -> tuple[dict[str, dict[str, Any]], dict[str, FileEntry]]:
    """The newest intact set's object index, to copy only what changed since."""
    for info in catalog.list_sets(repo, key):
        manifest = info.manifest
        if manifest is None or not manifest.objects or manifest.encrypted != (key is not None):
            continue
        try:
            index = catalog.read_json_lines(repo, manifest, INDEX_NAME, key, work=work)
        except (BackupKeyError, OSError, ValueError):
            return {}, {}
        return {e["key"]: e for e in index}, {b.path: b for b in manifest.blobs}
    return {}, {}


def _versions(snap: pg_logical.Snapshot, conn: redis_lib.Redis | None) -> dict[str, str]:
    versions = {
        "templator": templator.__version__ if hasattr(templator, "__version__") else "?",
        "postgres": snap.server_version,
    }
    if conn is not None:
        versions["redis"] = str(conn.info("server").get("redis_version", "?"))
    return versions


def create_backup(
    settings: Settings,
    urls: StoreUrls,
    repo: Repo,
    *,
    key: BackupKey | None,
    include_redis: bool = True,
    include_objects: bool = True,
    jobs: int | None = None,
    wait: float = 0.0,
    pitr: Any = None,
    progress: Progress = catalog.no_progress,
) -> Manifest:
    """Back up every store into a new sealed set; returns its manifest."""
    jobs = jobs or settings.backup_jobs
    if include_objects and not urls.s3_endpoint_url:
        raise BackupConfigError(
            "no object store endpoint resolves (S3_ENDPOINT_URL unset and no local stack): "
            "set it, or pass --skip-objects to make a set without objects"
        )
    with repository_lock(repo.lock_path, command="backup create", wait=wait):
        started = time.perf_counter()
        now = datetime.now(UTC)
        name = PREFIX + now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
        work = settings.var_dir / "backup-work"
        previous, previous_blobs = _previous_index(repo, key, work) if include_objects else ({}, {})
        staging = repo.staging(name)
        ledger: _Ledger = {}
        try:
            manifest = Manifest(
                name=name,
                created_at=now.isoformat(),
                encrypted=key is not None,
                key_id=key.key_id if key is not None else None,
            )
            _fill(
                settings,
                urls,
                repo,
                manifest,
                staging,
                key=key,
                include_redis=include_redis,
                include_objects=include_objects,
                jobs=jobs,
                pitr=pitr,
                previous=previous,
                previous_blobs=previous_blobs,
                progress=progress,
                ledger=ledger,
            )
            manifest.files = _entries(staging, ledger)
            manifest.seconds = round(time.perf_counter() - started, 3)
            fd = os.open(staging / MANIFEST_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(manifest.dumps(key))
                handle.flush()
                os.fsync(handle.fileno())
            repo.commit(staging, name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(repo, S3Repository):
                repo.delete_set(name)
            raise
    return manifest


def _fill(
    settings: Settings,
    urls: StoreUrls,
    repo: Repo,
    manifest: Manifest,
    staging: Path,
    *,
    key: BackupKey | None,
    include_redis: bool,
    include_objects: bool,
    jobs: int,
    pitr: Any,
    previous: dict[str, dict[str, Any]],
    previous_blobs: dict[str, FileEntry],
    progress: Progress,
    ledger: _Ledger,
) -> None:
    """Snapshot, Redis, PostgreSQL, objects — in that order — into the staging folder."""
    rconn = redis_dump.client(urls.redis_url) if include_redis else None
    s3 = source_s3(settings, urls) if include_objects else None
    try:
        if rconn is not None:
            redis_dump.ping(rconn)
        with pg_logical.snapshot(urls.database_url) as snap:
            manifest.alembic_revision = snap.alembic_revision
            manifest.versions = _versions(snap, rconn)
            pinned = set(snap.objects)
            not_after = datetime.fromisoformat(snap.taken_at)
            if rconn is not None:
                pattern = f"{settings.cache_namespace}:*"
                progress("redis", 0, int(rconn.dbsize()))
                with sealed_file(staging, REDIS_NAME, key, ledger) as writer:
                    manifest.redis = redis_dump.dump(
                        rconn, writer, pattern=pattern, advance=lambda n: progress("redis", n, None)
                    )
                progress("redis", 0, -1)
            if pitr is not None:
                manifest.database = pitr.backup(snap, progress=progress)
            else:
                plain = staging / ".plain-postgres"
                progress("postgres", 0, None)
                manifest.database = pg_logical.dump(
                    urls.database_url,
                    snap,
                    plain,
                    jobs=jobs,
                    advance=lambda n: progress("postgres", n, None),
                )
                progress("postgres", 0, -1)
                progress("seal", 0, manifest.database["bytes"])
                _seal_folder(
                    plain, staging / PG_FOLDER, key, lambda n: progress("seal", n, None), ledger
                )
                progress("seal", 0, -1)
            manifest.database["alembic_revision"] = snap.alembic_revision
            if pitr is not None:
                # The base backup ends after the snapshot: pin what its end state refers to.
                pinned |= pitr.referenced_keys()
                not_after = datetime.now(UTC)
        if s3 is not None:
            listing = objects.list_bucket(s3, settings.s3_bucket)
            wanted = objects.select(listing, pinned=pinned, not_after=not_after)
            progress("objects", 0, sum(listing[k]["size"] for k in wanted))
            work = settings.var_dir / "backup-work"
            work.mkdir(parents=True, exist_ok=True, mode=0o700)
            copy = objects.copy_bucket(
                s3,
                settings.s3_bucket,
                repo,
                listing=listing,
                key=key,
                pinned=pinned,
                not_after=not_after,
                previous=previous,
                previous_blobs=previous_blobs,
                work=staging if not isinstance(repo, S3Repository) else work,
                jobs=jobs,
                advance=lambda n: progress("objects", n, None),
            )
            progress("objects", 0, -1)
            with sealed_file(staging, INDEX_NAME, key, ledger) as writer:
                for record in copy.index:
                    writer.write(orjson.dumps(record) + b"\n")
            manifest.blobs = sorted(copy.blobs.values(), key=lambda b: b.path)
            manifest.objects = {
                "bucket": settings.s3_bucket,
                "objects": len(copy.index),
                "bytes": sum(int(r["size"]) for r in copy.index),
                "copied": copy.copied,
                "copied_bytes": copy.copied_bytes,
                "reused": copy.reused,
                "missing_referenced": len(copy.missing_referenced),
            }
    except redis_lib.RedisError as exc:
        raise BackupStoreUnreachable(f"Redis failed during the backup: {exc}") from None
    finally:
        if rconn is not None:
            rconn.close()

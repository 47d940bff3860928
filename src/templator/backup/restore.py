"""`backup restore` and `backup verify --drill`: exact, mirrored, honest about failures.

A restore first verifies every checksum of the set, then checks that every store it is
about to touch answers; only then does it change anything, one store at a time —
PostgreSQL (a fresh database swapped in, or pgBackRest to a time), Redis (the namespace
mirrored), objects (the bucket mirrored). If a later store fails, the error names the
stores already restored and the command that finishes the job.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from templator.backup import catalog, objects, pg_logical, redis_dump, scratch
from templator.backup.catalog import Progress, Repo
from templator.backup.create import INDEX_NAME, PG_FOLDER, REDIS_NAME, source_s3
from templator.backup.crypto import BackupKey
from templator.backup.errors import BackupConfigError, BackupStoreUnreachable, RestoreIncomplete
from templator.backup.lock import repository_lock
from templator.backup.manifest import Manifest
from templator.backup.pgbackrest import Pitr
from templator.config import Settings
from templator.connections import StoreUrls
from templator.exceptions import TemplatorError

STORES = ("postgres", "redis", "objects")


@dataclass
class RestoreReport:
    """What a restore did."""

    name: str
    database: str
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    objects: dict[str, int] = field(default_factory=dict)
    redis_keys: int = 0
    rows_missing_objects: int = 0
    seconds: float = 0.0


@contextmanager
def _plain_folder(work: Path, label: str) -> Iterator[Path]:
    folder = work / f".{label}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True, mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _unseal_dump(
    repo: Repo, manifest: Manifest, key: BackupKey | None, dest: Path, work: Path
) -> None:
    """Decrypt the set's pg_dump folder into `dest` (private, removed after the restore)."""
    prefix = f"{PG_FOLDER}/"
    for entry in manifest.files:
        if not entry.path.startswith(prefix):
            continue
        with (dest / entry.path[len(prefix) :]).open("wb") as out:
            for chunk in catalog.file_chunks(repo, manifest, entry.path, key, work=work):
                out.write(chunk)


def _preflight(
    settings: Settings,
    urls: StoreUrls,
    manifest: Manifest,
    stores: list[str],
    pitr: Pitr | None,
) -> None:
    """Every store the restore will touch must answer before any is touched.

    For a pgBackRest set what must answer is the pgBackRest repository holding its base
    backup: the server's data folder is replaced, so a dead server, or one whose data
    folder is gone (the disaster case), is no reason to refuse.
    """
    if "postgres" in stores and manifest.database.get("method") == "pgbackrest" and pitr:
        pitr.check(str(manifest.database["label"]))
    elif "postgres" in stores:
        with pg_logical.connect(urls.database_url, database="postgres", autocommit=True):
            pass
    if "redis" in stores:
        conn = redis_dump.client(urls.redis_url)
        try:
            redis_dump.ping(conn)
        finally:
            conn.close()
    if "objects" in stores:
        if not urls.s3_endpoint_url:
            raise BackupStoreUnreachable(
                f"{manifest.name} holds {manifest.objects.get('objects', 0)} objects but no "
                "object store endpoint resolves: set S3_ENDPOINT_URL, or pass --only without "
                "objects; nothing was changed"
            )
        try:
            source_s3(settings, urls).list_buckets()
        except (BotoCoreError, ClientError) as exc:
            raise BackupStoreUnreachable(f"the object store is unreachable: {exc}") from None


def _stores_of(manifest: Manifest, only: set[str] | None) -> list[str]:
    present = ["postgres"]
    if manifest.redis:
        present.append("redis")
    if manifest.objects:
        present.append("objects")
    return [s for s in present if only is None or s in only]


def restore_backup(
    settings: Settings,
    urls: StoreUrls,
    repo: Repo,
    name: str,
    *,
    key: BackupKey | None,
    only: set[str] | None = None,
    target_database: str | None = None,
    to_time: datetime | None = None,
    pitr: Pitr | None = None,
    jobs: int | None = None,
    wait: float = 0.0,
    progress: Progress = catalog.no_progress,
) -> RestoreReport:
    """Make each chosen store equal to set `name` (a mirror)."""
    jobs = jobs or settings.backup_jobs
    with repository_lock(repo.lock_path, command="backup restore", wait=wait):
        started = time.perf_counter()
        manifest = catalog.verify(repo, name, key, progress=progress)
        stores = _stores_of(manifest, only)
        database = target_database or make_url(urls.database_url).database or ""
        report = RestoreReport(manifest.name, database)
        report.skipped = [s for s in STORES if s not in stores]
        _preflight(settings, urls, manifest, stores, pitr)
        job = RestoreJob(
            settings=settings,
            urls=urls,
            repo=repo,
            manifest=manifest,
            key=key,
            work=settings.var_dir / "backup-work",
            database=database,
            to_time=to_time,
            to_end=name == "latest",
            pitr=pitr,
            jobs=jobs,
            progress=progress,
        )
        for store in stores:
            try:
                RESTORERS[store](job, report)
            except (TemplatorError, RedisError, BotoCoreError, ClientError, OSError) as exc:
                if not report.restored:
                    raise
                left = [s for s in stores if s not in report.restored]
                message = getattr(exc, "message", None) or str(exc)
                raise RestoreIncomplete(
                    f"restore of {manifest.name} is incomplete: restored "
                    f"{', '.join(report.restored)}; {store} failed ({message}); not "
                    f"restored: {', '.join(left)}. The stores are now mixed: fix the cause, then "
                    f"run `templator backup restore "
                    f"{manifest.name} --only {','.join(left)} --yes`"
                ) from None
            report.restored.append(store)
        if "objects" in stores or "postgres" in stores:
            report.rows_missing_objects = _missing_rows(settings, urls, database)
        report.seconds = round(time.perf_counter() - started, 3)
        return report


def _missing_rows(settings: Settings, urls: StoreUrls, database: str) -> int:
    if not urls.s3_endpoint_url:
        return 0
    present = set(objects.list_bucket(source_s3(settings, urls), settings.s3_bucket))
    return pg_logical.missing_object_rows(urls.database_url, present, database=database)


@dataclass(frozen=True)
class RestoreJob:
    """Everything the restore of one store needs: the set, where it goes, how."""

    settings: Settings
    urls: StoreUrls
    repo: Repo
    manifest: Manifest
    key: BackupKey | None
    work: Path
    database: str
    to_time: datetime | None
    to_end: bool
    pitr: Pitr | None
    jobs: int
    progress: Progress


def _restore_postgres(job: RestoreJob, report: RestoreReport) -> None:
    """pgBackRest to a time, or the logical dump into a fresh database swapped in."""
    manifest, progress = job.manifest, job.progress
    progress("postgres", 0, manifest.database.get("bytes") or None)
    if manifest.database.get("method") == "pgbackrest":
        if job.pitr is None:
            raise BackupStoreUnreachable(
                f"{manifest.name} is a pgBackRest base backup: restore it on the "
                "embedded stack that made it (its pgbackrest.conf is under VAR_DIR)"
            )
        job.pitr.restore(manifest, to_time=job.to_time, to_end=job.to_end, progress=progress)
    else:
        with _plain_folder(job.work, "restore-pg") as plain:
            _unseal_dump(job.repo, manifest, job.key, plain, job.work)
            fresh = f"{job.database[:40]}__restore_{secrets.token_hex(4)}"
            pg_logical.restore_into_fresh(
                job.urls.database_url,
                plain,
                fresh,
                jobs=job.jobs,
                server_major=int(str(manifest.versions.get("postgres", "15")).split(".")[0]),
            )
            pg_logical.swap_in(job.urls.database_url, fresh, job.database)
    progress("postgres", 0, -1)


def _restore_redis(job: RestoreJob, report: RestoreReport) -> None:
    """The namespace mirrored from the set's dump."""
    manifest, progress = job.manifest, job.progress
    conn = redis_dump.client(job.urls.redis_url)
    try:
        progress("redis", 0, int(manifest.redis.get("keys", 0)))
        report.redis_keys = redis_dump.restore(
            conn,
            catalog.file_chunks(job.repo, manifest, REDIS_NAME, job.key, work=job.work),
            pattern=str(manifest.redis.get("pattern") or f"{job.settings.cache_namespace}:*"),
            what=f"{manifest.name}: {REDIS_NAME}",
            advance=lambda n: progress("redis", n, None),
        )
    finally:
        conn.close()
    progress("redis", 0, -1)


def _restore_objects(job: RestoreJob, report: RestoreReport) -> None:
    """The bucket mirrored from the set's index (and, after a point-in-time restore, what
    the restored rows need from later sets)."""
    manifest, settings, work = job.manifest, job.settings, job.work
    index = catalog.read_json_lines(job.repo, manifest, INDEX_NAME, job.key, work=work)
    keep: set[str] = set()
    if manifest.database.get("method") == "pgbackrest":
        # A point-in-time restore keeps what the restored rows refer to (rows written
        # after the base backup refer to objects the set does not hold).
        with pg_logical.connect(job.urls.database_url, database=job.database) as pg:
            if pg.execute("SELECT to_regclass('stored_objects')").fetchone()[0]:  # type: ignore[index]
                keep = {row[0] for row in pg.execute("SELECT key FROM stored_objects")}
    s3 = source_s3(settings, job.urls)
    bucket = str(manifest.objects.get("bucket") or settings.s3_bucket)
    found_elsewhere: list[dict[str, Any]] = []
    if keep:
        missing = keep - {e["key"] for e in index} - set(objects.list_bucket(s3, bucket))
        found_elsewhere = _from_other_sets(job.repo, manifest, missing, job.key, work)
        index = index + found_elsewhere
    job.progress("objects", 0, sum(int(e["size"]) for e in index))
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    report.objects = objects.restore_bucket(
        s3,
        bucket,
        job.repo,
        index,
        key=job.key if manifest.encrypted else None,
        keep=keep,
        work=work,
        jobs=job.jobs,
        advance=lambda n: job.progress("objects", n, None),
    )
    report.objects["from_other_sets"] = len(found_elsewhere)
    job.progress("objects", 0, -1)


RESTORERS: dict[str, Callable[[RestoreJob, RestoreReport], None]] = {
    "postgres": _restore_postgres,
    "redis": _restore_redis,
    "objects": _restore_objects,
}
"""How each store of `STORES` is restored."""


def _from_other_sets(
    repo: Repo, manifest: Manifest, missing: set[str], key: BackupKey | None, work: Path
) -> list[dict[str, Any]]:
    """Index entries of other sets for objects the restored rows need and the set lacks.

    A point-in-time restore lands after the set's own moment: its rows may refer to an
    object uploaded later and since deleted from the bucket. A later set (kept by prune
    for the WAL window) holds it; objects are immutable by key, so its copy is the one.
    """
    found: list[dict[str, Any]] = []
    for info in catalog.list_sets(repo, key):
        other = info.manifest
        if not missing:
            break
        if other is None or other.name == manifest.name or not other.objects:
            continue
        if (other.encrypted, other.key_id) != (manifest.encrypted, manifest.key_id):
            continue
        for entry in catalog.read_json_lines(repo, other, INDEX_NAME, key, work=work):
            if entry["key"] in missing:
                found.append(entry)
                missing.discard(entry["key"])
    return found


def drill(
    settings: Settings,
    urls: StoreUrls,
    repo: Repo,
    name: str,
    *,
    key: BackupKey | None,
    jobs: int | None = None,
    wait: float = 0.0,
    pitr: Pitr | None = None,
    progress: Progress = catalog.no_progress,
) -> dict[str, Any]:
    """Restore the set into scratch copies, compare with its manifest, record the result.

    A pgBackRest set is checked with `pgbackrest verify` (every file of the base backup
    and the WAL it needs against pgBackRest's checksums) instead of a scratch restore.
    """
    jobs = jobs or settings.backup_jobs
    with repository_lock(repo.lock_path, command="backup verify --drill", wait=wait):
        started = time.perf_counter()
        manifest = catalog.verify(repo, name, key, progress=progress)
        work = settings.var_dir / "backup-work"
        problems: list[str] = []
        if manifest.database.get("method") == "pgbackrest":
            if pitr is None:
                raise BackupConfigError(
                    f"{manifest.name} is a pgBackRest base backup: drill it on the host of "
                    "the embedded server that made it"
                )
            progress("postgres", 0, None)
            try:
                pitr.verify(str(manifest.database["label"]))
            except TemplatorError as exc:
                problems.append(f"pgbackrest verify: {exc.message}")
            now: dict[str, Any] = {}
            progress("postgres", 0, -1)
        else:
            now = _drill_postgres(urls, repo, manifest, key, work, jobs, progress)
        expected = manifest.database.get("tables", {}) if now else {}
        for table, value in expected.items():
            if now.get(table) != value:
                problems.append(f"table {table}: {now.get(table)} != {value} (rows, hash)")
        if manifest.redis:
            progress("redis", 0, int(manifest.redis.get("keys", 0)))
            conn = redis_dump.client(urls.redis_url)
            prefix = scratch.redis_prefix(repo)
            try:
                redis_dump.clear(conn, f"{prefix}*")  # a killed drill's leftovers
                count, digest = _drill_redis(conn, repo, manifest, key, work, prefix)
            finally:
                redis_dump.clear(conn, f"{prefix}*")
                conn.close()
            if (count, digest) != (manifest.redis["keys"], manifest.redis["digest"]):
                problems.append(f"redis: {count} keys / digest {digest} differ from the manifest")
            progress("redis", 0, -1)
        if manifest.objects:
            index = catalog.read_json_lines(repo, manifest, INDEX_NAME, key, work=work)
            progress("objects", 0, sum(int(e["size"]) for e in index))
            blob_key = key if manifest.encrypted else None
            if urls.s3_endpoint_url:
                problems += scratch.drill_objects(
                    source_s3(settings, urls),
                    str(manifest.objects.get("bucket") or settings.s3_bucket),
                    repo,
                    index,
                    key=blob_key,
                    work=work,
                    jobs=jobs,
                    advance=lambda n: progress("objects", n, None),
                )
            else:  # no store to restore into: the blobs are checked against their SHA-256
                for entry in index:
                    if not _blob_matches(repo, entry, blob_key, work):
                        problems.append(f"object {entry['key']!r}: differs from its SHA-256")
                    progress("objects", int(entry["size"]), None)
            progress("objects", 0, -1)
        result = {
            "at": datetime.now(UTC).isoformat(),
            "ok": not problems,
            "seconds": round(time.perf_counter() - started, 3),
            "tables": len(expected),
            "problems": problems,
        }
        catalog.record_drill(repo, manifest.name, result)
        return result


def _drill_postgres(
    urls: StoreUrls,
    repo: Repo,
    manifest: Manifest,
    key: BackupKey | None,
    work: Path,
    jobs: int,
    progress: Progress,
) -> dict[str, Any]:
    """Restore the dump into a scratch database; its table hashes; drop it."""
    scratch = f"templator_drill_{secrets.token_hex(4)}"
    progress("postgres", 0, manifest.database.get("bytes") or None)
    try:
        with _plain_folder(work, "drill-pg") as plain:
            _unseal_dump(repo, manifest, key, plain, work)
            pg_logical.restore_into_fresh(
                urls.database_url,
                plain,
                scratch,
                jobs=jobs,
                server_major=int(str(manifest.versions.get("postgres", "15")).split(".")[0]),
            )
        return pg_logical.current_hashes(urls.database_url, database=scratch)
    finally:
        pg_logical.drop_database(urls.database_url, scratch)
        progress("postgres", 0, -1)


def _drill_redis(
    conn: Any, repo: Repo, manifest: Manifest, key: BackupKey | None, work: Path, prefix: str
) -> tuple[int, str]:
    """RESTORE every key under a scratch prefix, then digest them under their own names."""
    digest = 0
    count = 0
    chunks = catalog.file_chunks(repo, manifest, REDIS_NAME, key, work=work)
    pipe = conn.pipeline(transaction=False)
    pending: list[bytes] = []
    for name, _ttl, payload in redis_dump.records(chunks, what=REDIS_NAME):
        pipe.restore(prefix.encode() + name, scratch.REDIS_TTL_MS, payload, replace=True)
        pending.append(name)
        if len(pending) >= redis_dump.BATCH:
            pipe.execute()
            digest, count = _redump(conn, prefix, pending, digest, count)
            pending = []
    pipe.execute()
    digest, count = _redump(conn, prefix, pending, digest, count)
    return count, str(digest)


def _redump(conn: Any, prefix: str, names: list[bytes], digest: int, count: int) -> tuple[int, int]:
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.dump(prefix.encode() + name)
        payloads = pipe.execute()
    for name, payload in zip(names, payloads, strict=True):
        if payload is not None:
            digest = (digest + redis_dump.digest_one(name, payload)) & ((1 << 64) - 1)
            count += 1
    return digest, count


def _blob_matches(repo: Repo, entry: dict[str, Any], key: BackupKey | None, work: Path) -> bool:
    digest = hashlib.sha256()
    for chunk in objects.blob_chunks(repo, entry["blob"], key, work):
        digest.update(chunk)
    return bool(digest.hexdigest() == entry["sha256"])

"""Create, verify, restore, list and prune backups of the three stores.

A backup is a folder `<backup_dir>/templator-<UTC stamp>/` holding `postgres.dump`
(pg_dump custom format), `redis.jsonl` (the cache namespace, key by key), `objects/`
(every object of the bucket with an index of its headers) and `manifest.json` with the
size and SHA-256 of every file. It is written under a hidden `.partial` name and renamed
only once complete, so an interrupted backup never looks like a good one. Restores
verify every checksum before touching anything; PostgreSQL is restored in a single
transaction.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotoConfig
from redis import Redis

from templator.backup import stores
from templator.backup.errors import BackupCorrupt, BackupInProgress, BackupNotFound
from templator.backup.manifest import MANIFEST_NAME, Manifest, sha256_file
from templator.config import Settings
from templator.connections import StoreUrls

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Progress = Callable[[str, int, int | None], None]
"""progress(stage, advance, total_or_None)"""

PREFIX = "templator-"


def _noop(stage: str, advance: int, total: int | None) -> None:
    return None


def s3_client(settings: Settings, endpoint: str) -> S3Client:
    """A plain S3 client for backup copies (path-style, v4 signatures)."""
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        region_name=settings.s3_region,
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )
    return client


def _redis(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=10, client_name="templator-backup")


def create_backup(
    settings: Settings,
    urls: StoreUrls,
    *,
    root: Path,
    include_redis: bool = True,
    include_objects: bool = True,
    progress: Progress = _noop,
) -> tuple[Path, Manifest]:
    """Back up every configured store into a new folder under `root`."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    name = PREFIX + now.strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    partial = root / f".{name}.partial"
    if final.exists() or partial.exists():
        raise BackupInProgress(f"backup {name} already exists or is being written in {root}")
    partial.mkdir()
    manifest = Manifest(name=name, created_at=now.isoformat())
    try:
        progress("postgres", 0, 1)
        manifest.database = stores.dump_postgres(urls.database_url, partial / "postgres.dump")
        progress("postgres", 1, 1)
        if include_redis:
            client = _redis(urls.redis_url)
            try:
                total = int(client.dbsize())
                progress("redis", 0, total)
                manifest.redis = stores.dump_redis(
                    client,
                    partial / "redis.jsonl",
                    pattern=f"{settings.cache_namespace}:*",
                    advance=lambda n: progress("redis", n, None),
                )
            finally:
                client.close()
        if include_objects and urls.s3_endpoint_url:
            objects_dir = partial / "objects"
            objects_dir.mkdir()
            progress("objects", 0, None)
            manifest.objects = stores.dump_objects(
                s3_client(settings, urls.s3_endpoint_url),
                settings.s3_bucket,
                objects_dir,
                advance=lambda n: progress("objects", n, None),
            )
        for path in sorted(p for p in partial.rglob("*") if p.is_file()):
            manifest.add_file(partial, path)
        manifest.seconds = round(time.perf_counter() - started, 3)
        manifest.write(partial)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final, manifest


def resolve_backup(root: Path, name: str) -> Path:
    """The folder of backup `name` (a name under `root`, or a path)."""
    candidate = Path(name)
    folder = candidate if candidate.is_dir() else root / name
    if not (folder / MANIFEST_NAME).is_file():
        raise BackupNotFound(f"no backup {name!r} in {root} (see `templator backup list`)")
    return folder


def verify_backup(folder: Path, *, progress: Progress = _noop) -> Manifest:
    """Check that every file of the manifest is there with its checksum."""
    manifest = Manifest.read(folder)
    progress("verify", 0, len(manifest.files))
    for entry in manifest.files:
        path = folder / entry.path
        if not path.is_file():
            raise BackupCorrupt(f"{folder.name}: {entry.path} is missing")
        if path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
            raise BackupCorrupt(f"{folder.name}: {entry.path} does not match its checksum")
        progress("verify", 1, None)
    return manifest


def restore_backup(
    settings: Settings,
    urls: StoreUrls,
    folder: Path,
    *,
    include_redis: bool = True,
    include_objects: bool = True,
    progress: Progress = _noop,
) -> Manifest:
    """Verify, then restore PostgreSQL (one transaction), Redis keys and objects."""
    manifest = verify_backup(folder, progress=progress)
    progress("postgres", 0, 1)
    stores.restore_postgres(urls.database_url, folder / "postgres.dump")
    progress("postgres", 1, 1)
    if include_redis and (folder / "redis.jsonl").exists():
        client = _redis(urls.redis_url)
        try:
            progress("redis", 0, int(manifest.redis.get("keys", 0)))
            stores.restore_redis(
                client, folder / "redis.jsonl", advance=lambda n: progress("redis", n, None)
            )
        finally:
            client.close()
    if include_objects and (folder / "objects").is_dir() and urls.s3_endpoint_url:
        s3 = s3_client(settings, urls.s3_endpoint_url)
        progress("objects", 0, int(manifest.objects.get("objects", 0)))
        stores.restore_objects(
            s3,
            settings.s3_bucket,
            folder / "objects",
            advance=lambda n: progress("objects", n, None),
        )
    return manifest


def list_backups(root: Path) -> list[Manifest]:
    """Complete backups under `root`, newest first."""
    if not root.is_dir():
        return []
    found = [
        Manifest.read(p)
        for p in root.iterdir()
        if p.name.startswith(PREFIX) and (p / MANIFEST_NAME).is_file()
    ]
    return sorted(found, key=lambda m: m.created_at, reverse=True)


def prune_backups(
    root: Path, *, older_than: timedelta, keep: int = 1, dry_run: bool = False
) -> list[str]:
    """Delete backups older than `older_than`, always keeping the newest `keep`."""
    cutoff = datetime.now(UTC) - older_than
    removed = []
    for manifest in list_backups(root)[keep:]:
        if datetime.fromisoformat(manifest.created_at) < cutoff:
            if not dry_run:
                shutil.rmtree(root / manifest.name)
            removed.append(manifest.name)
    for stale in root.glob(f".{PREFIX}*.partial") if root.is_dir() else []:
        if not dry_run:
            shutil.rmtree(stale, ignore_errors=True)
        removed.append(stale.name)
    return removed

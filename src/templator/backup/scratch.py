"""The scratch copies of `verify --drill`, under prefixes of their own, always removed.

A drill restores the set's objects into the bucket under `.templator-drill/<repo id>/`
and its cache keys under `templator-drill-<repo id>:`, reads them back, and deletes them
in a `finally`. A drill killed half-way leaves them behind: the next drill of the same
repository deletes its prefix first (the repository lock means no other drill of it is
running), the keys carry a one-hour TTL anyway, and `create` never takes an object under
the drill prefix into a set.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from templator.backup.catalog import Repo
from templator.backup.crypto import CHUNK, BackupKey
from templator.backup.errors import BackupCorrupt
from templator.backup.objects import DRILL_PREFIX, Advance, s3_error, upload_entry

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REDIS_TTL_MS = 3_600_000


def _repository_id(repo: Repo) -> str:
    return hashlib.sha256(repo.url.encode()).hexdigest()[:12]


def object_prefix(repo: Repo) -> str:
    """The bucket prefix of this repository's drills."""
    return f"{DRILL_PREFIX}{_repository_id(repo)}/"


def redis_prefix(repo: Repo) -> str:
    """The key prefix of this repository's drills (outside every cache namespace)."""
    return f"templator-drill-{_repository_id(repo)}:"


def delete_prefix(s3: S3Client, bucket: str, prefix: str) -> int:
    """Delete every object under `prefix`; how many there were."""
    deleted = 0
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            keys = [item["Key"] for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
                )
                deleted += len(keys)
    except (BotoCoreError, ClientError) as exc:
        raise s3_error(exc, f"removing the drill's scratch objects under {prefix}") from None
    return deleted


def drill_objects(
    s3: S3Client,
    bucket: str,
    repo: Repo,
    index: list[dict[str, Any]],
    *,
    key: BackupKey | None,
    work: Path,
    jobs: int,
    advance: Advance,
) -> list[str]:
    """Restore every object of `index` under the drill prefix, read it back, remove it.

    Returns the problems found (an object whose blob or read-back copy differs from the
    SHA-256 the set recorded).
    """
    prefix = object_prefix(repo)
    delete_prefix(s3, bucket, prefix)  # a killed drill's leftovers
    problems: list[str] = []
    lock = threading.Lock()

    def one(entry: dict[str, Any]) -> None:
        dest = prefix + entry["key"]
        try:
            upload_entry(s3, bucket, dest, repo, entry, key=key, work=work)
            digest = hashlib.sha256()
            body = s3.get_object(Bucket=bucket, Key=dest)["Body"]
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
            if digest.hexdigest() != entry["sha256"]:
                with lock:
                    problems.append(f"object {entry['key']!r}: read back differs from its SHA-256")
        except BackupCorrupt as exc:
            with lock:
                problems.append(exc.message)
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(exc, f"drill copy of {entry['key']!r}") from None
        advance(int(entry["size"]))

    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        with ThreadPoolExecutor(max_workers=max(4, jobs * 4)) as pool:
            for future in [pool.submit(one, e) for e in index]:
                future.result()
    finally:
        delete_prefix(s3, bucket, prefix)
    return sorted(problems)

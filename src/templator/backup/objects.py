"""The object store: content-addressed, incremental, parallel copies.

Object contents go to `blobs/<id>` in the repository, where the id is the SHA-256 of
the content (keyed with the backup key when sets are encrypted, so it reveals nothing).
Keys never become file names, so any legal key layout — `index.json`, `x` beside
`x/y`, a `dir/` marker beside `dir/f` — is backed up and restored byte for byte, and a
key can never collide with the set's own files. Each set has an encrypted index of
key → blob and headers; an object whose key, size and ETag match the previous set's
index is not downloaded again (objects are immutable by key), so a second backup
copies only what changed. Copies run on a thread pool.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from templator.backup.crypto import CHUNK, BackupKey, SealedWriter, open_chunks
from templator.backup.errors import BackupCorrupt, BackupStoreUnreachable
from templator.backup.manifest import FileEntry
from templator.backup.set_store import FolderRepository, S3Repository, blob_path

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Advance = Callable[[int], None]
# Where restore drills put their scratch objects (scratch.py); never part of a set.
DRILL_PREFIX = ".templator-drill/"


class HashingFile:
    """A file opened for writing that hashes what goes through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write and hash."""
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)


def s3_error(exc: Exception, what: str) -> BackupStoreUnreachable:
    """A one-line error for an object-store failure."""
    return BackupStoreUnreachable(f"object store: {what} failed: {exc}")


def list_bucket(s3: S3Client, bucket: str) -> dict[str, dict[str, Any]]:
    """Every object of `bucket`: key → size, ETag, last modified."""
    found: dict[str, dict[str, Any]] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = {
                    "size": int(item["Size"]),
                    "etag": item.get("ETag", ""),
                    "last_modified": item["LastModified"],
                }
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return {}
        raise s3_error(exc, f"listing bucket {bucket}") from None
    except BotoCoreError as exc:
        raise s3_error(exc, f"listing bucket {bucket}") from None
    return found


@dataclass
class ObjectCopy:
    """The result of copying the bucket into the repository."""

    index: list[dict[str, Any]] = field(default_factory=list)
    blobs: dict[str, FileEntry] = field(default_factory=dict)
    copied: int = 0
    copied_bytes: int = 0
    reused: int = 0
    missing_referenced: list[str] = field(default_factory=list)


def _stage_blob(
    s3: S3Client, bucket: str, key: str, key_obj: BackupKey | None, work: Path
) -> tuple[Path, dict[str, Any], str, FileEntry]:
    """Download one object through the cipher into a temp file; returns where and what."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as exc:
        raise s3_error(exc, f"download of {key!r}") from None
    fd, name = tempfile.mkstemp(dir=work, prefix=".blob-")
    path = Path(name)
    with os.fdopen(fd, "wb") as handle:
        stored = HashingFile(handle)
        writer = SealedWriter(key_obj, stored)  # type: ignore[arg-type]
        for chunk in response["Body"].iter_chunks(CHUNK):
            writer.write(chunk)
        writer.close()
        handle.flush()
        os.fsync(handle.fileno())
    plain_sha = writer.plain.hexdigest()
    blob_id = key_obj.blob_name(plain_sha) if key_obj is not None else plain_sha
    headers = {
        "content_type": response.get("ContentType"),
        "content_disposition": response.get("ContentDisposition"),
        "metadata": response.get("Metadata", {}),
        "sha256": plain_sha,
        "size": writer.size,
    }
    return path, headers, blob_id, FileEntry(blob_id, stored.size, stored.digest.hexdigest())


def select(
    listing: dict[str, dict[str, Any]], *, pinned: set[str], not_after: datetime
) -> list[str]:
    """Keys the set takes: those the snapshot's rows refer to, and any older than it
    (never a drill's scratch objects).

    S3 times have whole seconds, so "older" means before the snapshot's second began: an
    unreferenced object from that very second may be younger than the snapshot.
    """
    cutoff = not_after.replace(microsecond=0)
    return sorted(
        k
        for k, v in listing.items()
        if (k in pinned or v["last_modified"] < cutoff) and not k.startswith(DRILL_PREFIX)
    )


def copy_bucket(
    s3: S3Client,
    bucket: str,
    repo: FolderRepository | S3Repository,
    *,
    listing: dict[str, dict[str, Any]],
    key: BackupKey | None,
    pinned: set[str],
    not_after: datetime,
    previous: dict[str, dict[str, Any]],
    previous_blobs: dict[str, FileEntry],
    work: Path,
    jobs: int,
    advance: Advance,
) -> ObjectCopy:
    """Copy the objects the snapshot refers to, and those older than it, into `repo`."""
    result = ObjectCopy()
    result.missing_referenced = sorted(pinned - listing.keys())
    wanted = select(listing, pinned=pinned, not_after=not_after)
    have_blobs = {rel.rsplit("/", 1)[-1] for rel, _ in repo.files("blobs")}
    lock = threading.Lock()

    def one(obj_key: str) -> None:
        item = listing[obj_key]
        before = previous.get(obj_key)
        if (
            before is not None
            and before.get("etag") == item["etag"]
            and before.get("size") == item["size"]
            and before["blob"] in have_blobs
            and before["blob"] in previous_blobs
        ):
            with lock:
                result.index.append({**before, "key": obj_key})
                result.blobs[before["blob"]] = previous_blobs[before["blob"]]
                result.reused += 1
            advance(item["size"])
            return
        path, headers, blob_id, entry = _stage_blob(s3, bucket, obj_key, key, work)
        with lock:
            fresh = blob_id not in have_blobs
            have_blobs.add(blob_id)
        if fresh:
            repo.put(path, blob_path(blob_id))
        else:
            path.unlink(missing_ok=True)
        record = {"key": obj_key, "blob": blob_id, "etag": item["etag"], **headers}
        with lock:
            result.index.append(record)
            if blob_id not in result.blobs:
                result.blobs[blob_id] = previous_blobs.get(blob_id, entry) if not fresh else entry
            result.copied += 1
            result.copied_bytes += item["size"]
        advance(item["size"])

    with ThreadPoolExecutor(max_workers=max(4, jobs * 4)) as pool:
        for future in [pool.submit(one, k) for k in wanted]:
            future.result()
    result.index.sort(key=lambda r: r["key"])
    return result


def total_bytes(listing: dict[str, dict[str, Any]]) -> int:
    """Sum of object sizes."""
    return sum(v["size"] for v in listing.values())


def blob_chunks(
    repo: FolderRepository | S3Repository, blob_id: str, key: BackupKey | None, work: Path
) -> Iterator[bytes]:
    rel = blob_path(blob_id)
    if isinstance(repo, FolderRepository):
        with repo.local(rel).open("rb") as handle:
            yield from open_chunks(key, handle, what=f"object blob {blob_id}")
        return
    fd, name = tempfile.mkstemp(dir=work, prefix=".fetch-")
    os.close(fd)
    try:
        repo.fetch(rel, Path(name))
        with open(name, "rb") as handle:
            yield from open_chunks(key, handle, what=f"object blob {blob_id}")
    finally:
        os.unlink(name)


def upload_entry(
    s3: S3Client,
    bucket: str,
    dest: str,
    repo: FolderRepository | S3Repository,
    entry: dict[str, Any],
    *,
    key: BackupKey | None,
    work: Path,
) -> None:
    """Upload the blob of index `entry` as `dest`, with its headers, checking its SHA-256."""
    fd, name = tempfile.mkstemp(dir=work, prefix=".obj-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in blob_chunks(repo, entry["blob"], key, work):
                digest.update(chunk)
                handle.write(chunk)
        if digest.hexdigest() != entry["sha256"]:
            raise BackupCorrupt(f"object {entry['key']!r}: its blob does not match its SHA-256")
        extra: dict[str, Any] = {"Metadata": entry.get("metadata") or {}}
        if entry.get("content_type"):
            extra["ContentType"] = entry["content_type"]
        if entry.get("content_disposition"):
            extra["ContentDisposition"] = entry["content_disposition"]
        try:
            s3.upload_file(name, bucket, dest, ExtraArgs=extra)
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(exc, f"upload of {entry['key']!r}") from None
    finally:
        os.unlink(name)


def restore_bucket(
    s3: S3Client,
    bucket: str,
    repo: FolderRepository | S3Repository,
    index: list[dict[str, Any]],
    *,
    key: BackupKey | None,
    keep: set[str],
    work: Path,
    jobs: int,
    advance: Advance,
) -> dict[str, int]:
    """Make `bucket` equal to the index: upload what differs, delete what is not in it.

    Keys in `keep` survive even when the index lacks them (a point-in-time restore keeps
    the objects its restored rows refer to).
    """
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        try:
            s3.create_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(exc, f"creating bucket {bucket}") from None
    except BotoCoreError as exc:
        raise s3_error(exc, f"reaching bucket {bucket}") from None
    current = list_bucket(s3, bucket)
    counts = {"uploaded": 0, "unchanged": 0, "deleted": 0}
    lock = threading.Lock()

    def one(entry: dict[str, Any]) -> None:
        now = current.get(entry["key"])
        if now is not None and now["etag"] == entry.get("etag") and now["size"] == entry["size"]:
            with lock:
                counts["unchanged"] += 1
            advance(entry["size"])
            return
        upload_entry(s3, bucket, entry["key"], repo, entry, key=key, work=work)
        with lock:
            counts["uploaded"] += 1
        advance(entry["size"])

    with ThreadPoolExecutor(max_workers=max(4, jobs * 4)) as pool:
        for future in [pool.submit(one, e) for e in index]:
            future.result()
    wanted = {e["key"] for e in index} | keep
    doomed = [k for k in current if k not in wanted]
    for start in range(0, len(doomed), 1000):
        batch = doomed[start : start + 1000]
        try:
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(exc, "deleting objects not in the set") from None
        counts["deleted"] += len(batch)
    return counts

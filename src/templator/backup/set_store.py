"""Where sets live: a folder (`/path`) or an S3 bucket and prefix (`s3://bucket/prefix`).

Layout, the same in both: `<NAME>/` per set (its manifest written last), `blobs/xx/<id>`
for object contents shared by every set (content-addressed, so a second backup copies
only what changed), `pgbackrest/` for pgBackRest's own repository when it is a folder.
A set is built in a local staging folder — `.<NAME>.partial` inside a folder
repository, so the final step is one atomic rename after an fsync of every file and
folder; in an S3 repository the staging folder is local and the manifest is uploaded
after every other file, so a set without a manifest is a leftover, never a set.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from templator.backup.errors import BackupConfigError, BackupRepositoryError
from templator.config import Settings
from templator.storage.client import make_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "templator-"
BLOBS = "blobs"


def fsync_path(path: Path) -> None:
    """fsync a file or a folder."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, then `folder` itself."""
    for current, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_path(Path(current) / name)
        for name in dirs:
            fsync_path(Path(current) / name)
    fsync_path(folder)


def private_dirs(folder: Path) -> None:
    """Create `folder` and any missing parents with mode 0700 (mkdir's parents get 0777)."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def blob_path(blob_id: str) -> str:
    """Repository path of an object blob."""
    return f"{BLOBS}/{blob_id[:2]}/{blob_id}"


class Repository(Protocol):
    """What create, verify, restore and prune need from a destination."""

    url: str
    lock_path: Path

    def staging(self, name: str) -> Path: ...
    def commit(self, staging: Path, name: str) -> None: ...
    def put(self, local: Path, rel: str) -> None: ...
    def fetch(self, rel: str, dest: Path) -> None: ...
    def read_bytes(self, rel: str) -> bytes: ...
    def write_bytes(self, rel: str, data: bytes) -> None: ...
    def exists(self, rel: str) -> bool: ...
    def size(self, rel: str) -> int | None: ...
    def files(self, prefix: str) -> Iterator[tuple[str, int]]: ...
    def set_names(self) -> list[str]: ...
    def leftovers(self) -> list[str]: ...
    def delete_set(self, name: str) -> None: ...
    def delete(self, rel: str) -> None: ...
    def total_bytes(self) -> int: ...


class FolderRepository:
    """A folder on a local (or mounted) file system; folders 0700, files 0600."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)
        self.lock_path = root / ".lock"

    def _ensure(self) -> None:
        try:
            private_dirs(self.root)
            os.chmod(self.root, 0o700)
        except OSError as exc:
            raise BackupRepositoryError(f"cannot use {self.root}: {exc.strerror}") from None

    def staging(self, name: str) -> Path:
        """`.<name>.partial` inside the repository (same file system, so rename is atomic)."""
        self._ensure()
        folder = self.root / f".{name}.partial"
        folder.mkdir(mode=0o700)
        return folder

    def commit(self, staging: Path, name: str) -> None:
        """fsync everything, then the one rename that makes the set exist."""
        fsync_tree(staging)
        os.rename(staging, self.root / name)
        fsync_path(self.root)

    def put(self, local: Path, rel: str) -> None:
        """Move a finished, fsynced file to `rel` atomically."""
        dest = self.root / rel
        private_dirs(dest.parent)
        os.replace(local, dest)
        fsync_path(dest.parent)

    def fetch(self, rel: str, dest: Path) -> None:
        """Copy `rel` to a local file."""
        shutil.copyfile(self.root / rel, dest)

    def local(self, rel: str) -> Path:
        """The path of `rel` (folder repositories only)."""
        return self.root / rel

    def read_bytes(self, rel: str) -> bytes:
        """The content of `rel`."""
        return (self.root / rel).read_bytes()

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Replace `rel` atomically with `data`."""
        dest = self.root / rel
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
        fsync_path(dest.parent)

    def exists(self, rel: str) -> bool:
        """Whether `rel` exists."""
        return (self.root / rel).exists()

    def size(self, rel: str) -> int | None:
        """Size of `rel`, None when absent."""
        try:
            return (self.root / rel).stat().st_size
        except FileNotFoundError:
            return None

    def files(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Every file under the folder `prefix`, as (relative path, size)."""
        base = self.root / prefix
        if not base.is_dir():
            return
        for current, _, files in os.walk(base):
            for name in files:
                path = Path(current) / name
                yield str(path.relative_to(self.root)), path.stat().st_size

    def set_names(self) -> list[str]:
        """Names of the committed sets (their manifests still to be checked)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.name.startswith(PREFIX))

    def leftovers(self) -> list[str]:
        """Staging folders of interrupted creates."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.glob(f".{PREFIX}*.partial"))

    def delete_set(self, name: str) -> None:
        """Remove a set or a leftover."""
        shutil.rmtree(self.root / name, ignore_errors=True)

    def delete(self, rel: str) -> None:
        """Remove one file."""
        (self.root / rel).unlink(missing_ok=True)

    def total_bytes(self) -> int:
        """Bytes under the repository folder."""
        return sum(size for _, size in self.files(""))


class S3Repository:
    """A bucket and prefix on any S3-compatible store (path-style addressing)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str, *, work: Path) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.work = work
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.lock_path = work / f"repo-{digest}.lock"

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def _fail(self, exc: Exception, what: str) -> BackupRepositoryError:
        return BackupRepositoryError(f"backup repository {self.url}: {what} failed: {exc}")

    def staging(self, name: str) -> Path:
        """A local staging folder under the work folder."""
        self.work.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder = self.work / f".{name}.partial"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700)
        return folder

    def commit(self, staging: Path, name: str) -> None:
        """Upload every file, the manifest last; then drop the staging folder."""
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == "manifest.json")
        for path in files:
            self.put_copy(path, f"{name}/{path.relative_to(staging)}")
        shutil.rmtree(staging, ignore_errors=True)

    def put_copy(self, local: Path, rel: str) -> None:
        """Upload a local file to `rel`."""
        try:
            self.client.upload_file(str(local), self.bucket, self._key(rel))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"upload of {rel}") from None

    def put(self, local: Path, rel: str) -> None:
        """Upload a local file to `rel`, then remove it."""
        self.put_copy(local, rel)
        local.unlink(missing_ok=True)

    def fetch(self, rel: str, dest: Path) -> None:
        """Download `rel`."""
        try:
            self.client.download_file(self.bucket, self._key(rel), str(dest))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"download of {rel}") from None

    def read_bytes(self, rel: str) -> bytes:
        """The content of `rel`."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"]
            return body.read()
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"read of {rel}") from None

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write `rel` (an S3 PUT replaces atomically)."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"write of {rel}") from None

    def size(self, rel: str) -> int | None:
        """Size of `rel`, None when absent."""
        try:
            return int(
                self.client.head_object(Bucket=self.bucket, Key=self._key(rel))["ContentLength"]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail(exc, f"head of {rel}") from None
        except BotoCoreError as exc:
            raise self._fail(exc, f"head of {rel}") from None

    def exists(self, rel: str) -> bool:
        """Whether `rel` exists."""
        return self.size(rel) is not None

    def files(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Every object under `prefix`, as (relative path, size)."""
        want = self._key(prefix.rstrip("/") + "/") if prefix else self._key("")
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=want
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield self._rel(item["Key"]), int(item["Size"])
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, "listing") from None

    def _top(self) -> set[str]:
        want = self._key("")
        names: set[str] = set()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=want, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    names.add(self._rel(common["Prefix"]).rstrip("/"))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, "listing") from None
        return {n for n in names if n.startswith(PREFIX)}

    def set_names(self) -> list[str]:
        """Sets whose manifest has been uploaded."""
        return sorted(n for n in self._top() if self.exists(f"{n}/manifest.json"))

    def leftovers(self) -> list[str]:
        """Set prefixes without a manifest: uploads of interrupted creates."""
        # Some stores (SeaweedFS) keep listing a prefix as a folder once it is empty.
        return sorted(
            n
            for n in self._top()
            if not self.exists(f"{n}/manifest.json") and next(iter(self.files(n)), None)
        )

    def delete_set(self, name: str) -> None:
        """Remove every object of a set (the manifest first, so it stops being a set)."""
        self.delete(f"{name}/manifest.json")
        for rel, _ in list(self.files(name)):
            self.delete(rel)

    def delete(self, rel: str) -> None:
        """Remove one object."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(rel))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, f"delete of {rel}") from None

    def total_bytes(self) -> int:
        """Bytes under the prefix."""
        return sum(size for _, size in self.files(""))


def s3_client_for(
    *, endpoint: str | None, access_key: str, secret_key: str, region: str, settings: Settings
) -> S3Client:
    """A plain path-style S3 client (storage's factory, with backup's retries and pool)."""
    return make_client(
        settings,
        endpoint_url=endpoint,
        retries=3,
        pool_size=32,
        addressing_style="path",
        region=region,
        keys=(access_key, secret_key),
    )


def open_repository(
    settings: Settings, override: str | None = None
) -> FolderRepository | S3Repository:
    """The repository of BACKUP_REPOSITORY (or `override`): a folder path or s3://bucket/prefix."""
    target = override or settings.backup_repository or str(settings.backup_dir)
    if target.startswith("s3://"):
        rest = target[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise BackupConfigError(f"BACKUP_REPOSITORY {target!r} names no bucket")
        endpoint = settings.backup_s3_endpoint_url or settings.s3_endpoint_url
        secret = settings.backup_s3_secret_key or settings.s3_secret_key
        client = s3_client_for(
            endpoint=endpoint,
            access_key=settings.backup_s3_access_key or settings.s3_access_key,
            secret_key=secret.get_secret_value(),
            region=settings.s3_region,
            settings=settings,
        )
        return S3Repository(client, bucket, prefix, work=settings.var_dir / "backup-work")
    if "://" in target:
        raise BackupConfigError(
            f"BACKUP_REPOSITORY {target!r}: use a folder path or s3://bucket/prefix"
        )
    return FolderRepository(Path(target).expanduser())

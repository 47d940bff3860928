"""The sets in a repository: list (a damaged set is listed as such), resolve, verify, read.

Nothing here stops at one bad set: `list`, `prune` and `status` report it by name and go
on with the others.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from templator.backup.crypto import CHUNK, BackupKey, open_chunks
from templator.backup.errors import BackupCorrupt, BackupKeyError, BackupNotFound
from templator.backup.manifest import MANIFEST_NAME, FileEntry, Manifest
from templator.backup.set_store import FolderRepository, S3Repository, blob_path

Repo = FolderRepository | S3Repository
Progress = Callable[[str, int, int | None], None]
DRILL_NAME = "drill.json"


def no_progress(stage: str, advance: int, total: int | None) -> None:
    """A Progress that reports nothing."""
    return None


@dataclass
class SetInfo:
    """A set as listed: its manifest, or why it cannot be used."""

    name: str
    manifest: Manifest | None
    problem: str | None = None

    @property
    def valid(self) -> bool:
        """Whether the manifest is intact (files are checked by verify)."""
        return self.manifest is not None


def read_manifest(repo: Repo, name: str, key: BackupKey | None = None) -> Manifest:
    """The checked manifest of set `name`."""
    try:
        data = repo.read_bytes(f"{name}/{MANIFEST_NAME}")
    except (OSError, BackupCorrupt):
        raise BackupCorrupt(f"{name}: {MANIFEST_NAME} is missing or unreadable") from None
    manifest = Manifest.loads(data, what=name, key=key)
    if manifest.name != name:
        raise BackupCorrupt(f"{name}: {MANIFEST_NAME} describes another set ({manifest.name})")
    return manifest


def list_sets(repo: Repo, key: BackupKey | None = None) -> list[SetInfo]:
    """Every set, newest first; damaged ones carry their problem instead of a manifest."""
    found: list[SetInfo] = []
    for name in repo.set_names():
        try:
            found.append(SetInfo(name, read_manifest(repo, name, key)))
        except (BackupCorrupt, BackupKeyError) as exc:
            found.append(SetInfo(name, None, exc.message))
    return sorted(found, key=lambda s: s.name, reverse=True)


def resolve(repo: Repo, name: str, key: BackupKey | None = None) -> Manifest:
    """The manifest of `name`, or of the newest intact set for `latest`."""
    if name == "latest":
        for info in list_sets(repo, key):
            if info.manifest is not None:
                return info.manifest
        raise BackupNotFound(f"no intact backup in {repo.url} (see `templator backup list`)")
    if name not in repo.set_names():
        raise BackupNotFound(f"no backup {name!r} in {repo.url} (see `templator backup list`)")
    return read_manifest(repo, name, key)


def _hash_stored(repo: Repo, rel: str) -> tuple[int, str] | None:
    digest = hashlib.sha256()
    size = 0
    if isinstance(repo, FolderRepository):
        try:
            with repo.local(rel).open("rb") as handle:
                while block := handle.read(CHUNK):
                    digest.update(block)
                    size += len(block)
        except FileNotFoundError:
            return None
        return size, digest.hexdigest()
    if repo.size(rel) is None:
        return None
    data = repo.read_bytes(rel)
    return len(data), hashlib.sha256(data).hexdigest()


def _check(repo: Repo, set_name: str, rel: str, entry: FileEntry, label: str) -> None:
    found = _hash_stored(repo, rel)
    if found is None:
        raise BackupCorrupt(f"{set_name}: {label} is missing")
    size, digest = found
    if size != entry.size:
        raise BackupCorrupt(
            f"{set_name}: {label} is {size} bytes, the manifest says {entry.size} (truncated?)"
        )
    if digest != entry.sha256:
        raise BackupCorrupt(f"{set_name}: {label} does not match its checksum")


def verify(
    repo: Repo, name: str, key: BackupKey | None = None, *, progress: Progress = no_progress
) -> Manifest:
    """Check the manifest, then every file and object blob of the set against it."""
    manifest = resolve(repo, name, key)
    if manifest.encrypted and key is None:
        raise BackupKeyError(
            f"{manifest.name} is encrypted: set BACKUP_ENCRYPTION_KEY_FILE to its key"
        )
    total = sum(f.size for f in manifest.files) + sum(b.size for b in manifest.blobs)
    progress("verify", 0, total)
    for entry in manifest.files:
        _check(repo, manifest.name, f"{manifest.name}/{entry.path}", entry, entry.path)
        progress("verify", entry.size, None)
    for blob in manifest.blobs:
        _check(repo, manifest.name, blob_path(blob.path), blob, f"object blob {blob.path}")
        progress("verify", blob.size, None)
    return manifest


def file_chunks(
    repo: Repo, manifest: Manifest, path: str, key: BackupKey | None, *, work: Path
) -> Iterator[bytes]:
    """The plaintext of one file of a set, chunk by chunk (decrypted when encrypted)."""
    rel = f"{manifest.name}/{path}"
    what = f"{manifest.name}: {path}"
    if manifest.encrypted and key is None:
        raise BackupKeyError(f"{manifest.name} is encrypted: set BACKUP_ENCRYPTION_KEY_FILE")
    use_key = key if manifest.encrypted else None
    if isinstance(repo, FolderRepository):
        with repo.local(rel).open("rb") as handle:
            yield from open_chunks(use_key, handle, what=what)
        return
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=work, prefix=".fetch-")
    os.close(fd)
    try:
        repo.fetch(rel, Path(name))
        with open(name, "rb") as handle:
            yield from open_chunks(use_key, handle, what=what)
    finally:
        os.unlink(name)


def read_json_lines(
    repo: Repo, manifest: Manifest, path: str, key: BackupKey | None, *, work: Path
) -> list[dict[str, Any]]:
    """A JSON-lines file of a set (the object index), decrypted."""
    data = b"".join(file_chunks(repo, manifest, path, key, work=work))
    return [orjson.loads(line) for line in data.splitlines() if line]


def read_drills(repo: Repo, name: str) -> list[dict[str, Any]]:
    """Drill results recorded beside a set (outside its sealed files)."""
    try:
        data = repo.read_bytes(f"{name}/{DRILL_NAME}")
    except (OSError, BackupCorrupt):
        return []
    except Exception:
        return []
    try:
        loaded = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []
    return loaded if isinstance(loaded, list) else []


def record_drill(repo: Repo, name: str, result: dict[str, Any]) -> None:
    """Append a drill result beside the set."""
    drills = read_drills(repo, name)
    drills.append(result)
    repo.write_bytes(f"{name}/{DRILL_NAME}", orjson.dumps(drills, option=orjson.OPT_INDENT_2))

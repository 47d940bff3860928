"""The manifest that describes a backup and lets it be verified before it is restored."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from templator.backup.errors import BackupCorrupt

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class FileEntry:
    """One file of the backup, relative to its folder."""

    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    """What a backup holds."""

    name: str
    created_at: str
    format_version: int = FORMAT_VERSION
    database: dict[str, Any] = field(default_factory=dict)
    redis: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)
    seconds: float = 0.0

    def write(self, folder: Path) -> None:
        """Write manifest.json into `folder`."""
        data = asdict(self)
        (folder / MANIFEST_NAME).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """Read manifest.json from `folder`; a malformed one is BackupCorrupt naming it."""
        path = folder / MANIFEST_NAME
        try:
            data = orjson.loads(path.read_bytes())
            files = [FileEntry(**entry) for entry in data.pop("files", [])]
            return cls(files=files, **data)
        except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
            raise BackupCorrupt(f"{path} is not a valid backup manifest: {exc}") from exc

    def add_file(self, folder: Path, path: Path) -> None:
        """Record a file with its size and checksum."""
        self.files.append(
            FileEntry(str(path.relative_to(folder)), path.stat().st_size, sha256_file(path))
        )

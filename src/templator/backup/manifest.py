"""The manifest: what a set holds, and proof that it is whole.

`manifest.json` is written last; a set without a readable, self-consistent manifest is
not a set. It carries its own SHA-256 (over its canonical JSON without the checksum
fields) and, when the set is encrypted, an HMAC under the backup key, so a flipped byte
anywhere in it — or a manifest rewritten by someone without the key — is refused. It
holds no user data (names, sizes and checksums of files, versions, counts), so `list`
and `status` work without the key; everything with user data lives in encrypted files.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from templator.backup.crypto import BackupKey
from templator.backup.errors import BackupCorrupt, BackupKeyError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class FileEntry:
    """One file of the set as stored (ciphertext when encrypted), relative to the set."""

    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    """What a backup set holds."""

    name: str
    created_at: str
    format_version: int = FORMAT_VERSION
    encrypted: bool = False
    key_id: str | None = None
    alembic_revision: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    database: dict[str, Any] = field(default_factory=dict)
    redis: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)
    blobs: list[FileEntry] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def stored_bytes(self) -> int:
        """Stored size of the set's own files (shared object blobs not counted)."""
        return sum(f.size for f in self.files)

    def _body(self) -> dict[str, Any]:
        return asdict(self)

    def dumps(self, key: BackupKey | None) -> bytes:
        """Canonical JSON with its checksum (and MAC when keyed)."""
        body = self._body()
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        seal = {"sha256": sha256_bytes(canonical)}
        if key is not None:
            seal["hmac"] = key.mac(canonical)
        return orjson.dumps(
            {"manifest": body, "seal": seal}, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
        )

    @classmethod
    def loads(cls, data: bytes, *, what: str, key: BackupKey | None = None) -> Manifest:
        """Parse and check a manifest; any damage raises BackupCorrupt naming `what`."""
        try:
            outer = orjson.loads(data)
            body = outer["manifest"]
            seal = outer["seal"]
            canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise BackupCorrupt(f"{what}: {MANIFEST_NAME} is unreadable") from None
        if not isinstance(seal, dict) or seal.get("sha256") != sha256_bytes(canonical):
            raise BackupCorrupt(f"{what}: {MANIFEST_NAME} does not match its checksum")
        try:
            files = [FileEntry(**entry) for entry in body.pop("files")]
            blobs = [FileEntry(**entry) for entry in body.pop("blobs")]
            manifest = cls(files=files, blobs=blobs, **body)
        except (KeyError, TypeError):
            raise BackupCorrupt(f"{what}: {MANIFEST_NAME} has an unknown layout") from None
        if key is not None and manifest.encrypted:
            if manifest.key_id != key.key_id:
                raise BackupKeyError(
                    f"{what} was made with backup key {manifest.key_id}; "
                    f"BACKUP_ENCRYPTION_KEY_FILE holds key {key.key_id}"
                )
            if seal.get("hmac") != key.mac(canonical):
                raise BackupCorrupt(f"{what}: {MANIFEST_NAME} fails its MAC (altered)")
        return manifest

"""Encryption at rest of every file of a set: AES-256-GCM, streamed in chunks.

Format of an encrypted file: a header (magic, key id, a random nonce prefix), then
chunks of at most CHUNK plaintext bytes, each sealed with AES-GCM under the nonce
`prefix | counter | last-flag` and the header as associated data. Reordering, dropping
or truncating chunks fails authentication (the final chunk carries the last flag), and
memory stays at one chunk whatever the file size — the STREAM construction of Hoang,
Reyhanitabar, Rogaway and Vizár.

The key file holds 32 random bytes in base64. Sub-keys for encryption and for the
manifest's MAC are derived from it with HMAC-SHA256, so one secret serves both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from templator.backup.errors import BackupCorrupt, BackupKeyError

MAGIC = b"TPLBAK1\n"
CHUNK = 1 << 20
_TAG = 16
_PREFIX = 7
HEADER_SIZE = len(MAGIC) + 8 + _PREFIX


@dataclass(frozen=True, slots=True)
class BackupKey:
    """The secret of BACKUP_ENCRYPTION_KEY_FILE and what is derived from it."""

    secret: bytes

    @property
    def key_id(self) -> str:
        """A public fingerprint recorded in every set, so a wrong key is named as such."""
        return hashlib.sha256(b"templator-backup-key-id" + self.secret).hexdigest()[:16]

    def _sub(self, label: bytes) -> bytes:
        return hmac.new(self.secret, label, hashlib.sha256).digest()

    def mac(self, data: bytes) -> str:
        """HMAC-SHA256 of `data` under the manifest sub-key."""
        return hmac.new(self._sub(b"manifest"), data, hashlib.sha256).hexdigest()

    def blob_name(self, sha256: str) -> str:
        """The repository name of an object's content: keyed, so it reveals no content hash."""
        return hmac.new(self._sub(b"blob"), sha256.encode(), hashlib.sha256).hexdigest()

    def cipher(self) -> AESGCM:
        """The AEAD under the encryption sub-key."""
        return AESGCM(self._sub(b"encrypt"))


def generate_key_file(path: Path) -> BackupKey:
    """Write a new key file with mode 0600; refuse to overwrite one."""
    secret = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupKeyError(f"{path} already exists: refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64encode(secret) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return BackupKey(secret)


def load_key_file(path: Path) -> BackupKey:
    """Read BACKUP_ENCRYPTION_KEY_FILE; a missing, unreadable or malformed file is named."""
    try:
        text = path.read_bytes().strip()
    except OSError as exc:
        raise BackupKeyError(f"cannot read the backup key file {path}: {exc.strerror}") from None
    try:
        secret = base64.b64decode(text, validate=True)
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise BackupKeyError(
            f"{path} is not a backup key (32 bytes in base64): make one with "
            "`templator backup keygen -o FILE`"
        )
    return BackupKey(secret)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I?", counter, last)


class SealedWriter:
    """A write-only stream that encrypts (or, with no key, passes through) to `dest`.

    Also hashes the plaintext, so one pass gives the content's SHA-256.
    """

    def __init__(self, key: BackupKey | None, dest: BinaryIO) -> None:
        self.key = key
        self.dest = dest
        self.plain = hashlib.sha256()
        self.size = 0
        self._buffer = bytearray()
        self._counter = 0
        if key is not None:
            self._prefix = secrets.token_bytes(_PREFIX)
            self._header = MAGIC + bytes.fromhex(key.key_id) + self._prefix
            self._aead = key.cipher()
            dest.write(self._header)

    def write(self, data: bytes) -> int:
        """Add plaintext."""
        self.plain.update(data)
        self.size += len(data)
        if self.key is None:
            self.dest.write(data)
            return len(data)
        self._buffer += data
        while len(self._buffer) > CHUNK:  # keep one full chunk back: it may be the last
            self._seal(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _seal(self, block: bytes, *, last: bool) -> None:
        nonce = _nonce(self._prefix, self._counter, last)
        self.dest.write(self._aead.encrypt(nonce, block, self._header))
        self._counter += 1

    def close(self) -> None:
        """Seal the final chunk."""
        if self.key is not None:
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()


def read_header(head: bytes, *, what: str) -> tuple[str, bytes]:
    """The key id and nonce prefix of an encrypted file's header."""
    if len(head) < HEADER_SIZE or not head.startswith(MAGIC):
        raise BackupCorrupt(f"{what} is not an encrypted backup file (bad header)")
    key_id = head[len(MAGIC) : len(MAGIC) + 8].hex()
    return key_id, head[len(MAGIC) + 8 : HEADER_SIZE]


def decrypt_chunks(key: BackupKey, source: BinaryIO, *, what: str) -> Iterator[bytes]:
    """Plaintext chunks of an encrypted file; a wrong key, tampering or truncation raises."""
    header = source.read(HEADER_SIZE)
    key_id, prefix = read_header(header, what=what)
    if key_id != key.key_id:
        raise BackupKeyError(
            f"{what} was encrypted with key {key_id}, not with the key of "
            f"BACKUP_ENCRYPTION_KEY_FILE ({key.key_id})"
        )
    aead = key.cipher()
    counter = 0
    block = source.read(CHUNK + _TAG)
    while True:
        following = source.read(CHUNK + _TAG) if len(block) == CHUNK + _TAG else b""
        last = not following
        try:
            yield aead.decrypt(_nonce(prefix, counter, last), block, header)
        except InvalidTag:
            raise BackupCorrupt(f"{what} fails authentication (altered or truncated)") from None
        if last:
            return
        block = following
        counter += 1


def open_chunks(key: BackupKey | None, source: BinaryIO, *, what: str) -> Iterator[bytes]:
    """Plaintext chunks of a stored file: decrypted with `key`, or as is without one."""
    if key is None:
        head = source.read(len(MAGIC))
        if head == MAGIC:
            raise BackupKeyError(f"{what} is encrypted: set BACKUP_ENCRYPTION_KEY_FILE")
        yield head
        while block := source.read(CHUNK):
            yield block
        return
    yield from decrypt_chunks(key, source, what=what)

"""Where the cache's signing key comes from (see `cache.py`: values are sealed with it).

In order: CACHE_SIGNING_KEY, CACHE_SIGNING_KEY_FILE, the key file the local stack
generated under var/secrets/ (passed by `resolve_urls`), else None: the cache then makes
a random key of its own, so the key is never empty or guessable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from templator.config import Settings
from templator.exceptions import ServiceUnavailable

MIN_LENGTH = 32


class SigningKeyUnusable(ServiceUnavailable):
    """The configured signing key file is missing, unreadable or too short."""

    code = "cache_signing_key_unusable"


def derive(secret: bytes) -> bytes:
    """The 32-byte MAC key for a configured secret of any length."""
    return hashlib.blake2b(secret, digest_size=32, person=b"templator-cache").digest()


def read_key_file(path: Path) -> bytes:
    """The secret in `path` (surrounding whitespace dropped); a clear error otherwise."""
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise SigningKeyUnusable(
            f"cannot read the cache signing key file {path}: {exc.strerror or exc}. "
            "Check CACHE_SIGNING_KEY_FILE."
        ) from exc
    if len(secret) < MIN_LENGTH:
        raise SigningKeyUnusable(
            f"the cache signing key in {path} is shorter than {MIN_LENGTH} characters"
        )
    return secret


def cache_signing_key(settings: Settings, *, stack_key_file: Path | None = None) -> bytes | None:
    """The MAC key of this process's cache, or None for a random one of its own."""
    if settings.cache_signing_key is not None:
        return derive(settings.cache_signing_key.get_secret_value().encode())
    path = settings.cache_signing_key_file or stack_key_file
    return None if path is None else derive(read_key_file(path))

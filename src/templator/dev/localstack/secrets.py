"""The local stack's generated secrets: one file each under var/secrets/ (folder 0700,
files 0600), made on first use and kept, so a restarted stack keeps its passwords."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from templator.dev.localstack.process import LocalStackError

FOLDER = "secrets"


def secret_file(path: Path) -> str:
    """The secret in `path`, generated first (URL-safe, 0600, written atomically) if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise LocalStackError(f"cannot read the secret file {path}: {exc}") from exc
    if existing:
        os.chmod(path, 0o600)
        return existing
    secret = secrets.token_urlsafe(32)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    return secret


def read_secret(path: Path) -> str | None:
    """The secret in `path`, or None when it is missing or unreadable (another account's)."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class StackSecrets:
    """Where each secret of a stack on `var_dir` lives."""

    def __init__(self, var_dir: Path) -> None:
        self.dir = var_dir / FOLDER
        self.postgres_owner = self.dir / "postgres-owner.password"
        self.postgres_app = self.dir / "postgres-app.password"
        self.redis = self.dir / "redis.password"
        self.cache_signing_key = self.dir / "cache-signing.key"
        self.s3_access_key = self.dir / "s3-access.key"
        self.s3_secret_key = self.dir / "s3-secret.key"

    def s3_keys(self) -> tuple[str, str] | None:
        """The stack's S3 access key and secret, or None when either is missing or
        unreadable (another account's stack)."""
        access, secret = read_secret(self.s3_access_key), read_secret(self.s3_secret_key)
        return (access, secret) if access and secret else None

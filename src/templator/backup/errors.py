"""Backup errors."""

from __future__ import annotations

from templator.exceptions import Conflict, NotFound, ServiceUnavailable, ValidationFailed


class BackupNotFound(NotFound):
    """No backup by that name."""


class BackupCorrupt(ValidationFailed):
    """A file is missing or its checksum does not match the manifest."""


class BackupToolFailed(ServiceUnavailable):
    """pg_dump or pg_restore failed or is missing."""


class BackupInProgress(Conflict):
    """Another backup writes into the same folder."""

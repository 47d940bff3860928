"""Backup errors."""

from __future__ import annotations

from templator.exceptions import Conflict, NotFound, ServiceUnavailable, ValidationFailed


class BackupNotFound(NotFound):
    """No backup by that name."""

    code = "backup_not_found"


class BackupCorrupt(ValidationFailed):
    """A file is missing or its checksum does not match the manifest."""

    code = "backup_corrupt"


class BackupToolFailed(ServiceUnavailable):
    """pg_dump or pg_restore failed or is missing."""

    code = "backup_tool_failed"


class BackupInProgress(Conflict):
    """Another backup writes into the same folder."""

    code = "backup_in_progress"

"""Backup errors."""

from __future__ import annotations

from templator.exceptions import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    TemplatorError,
    ValidationFailed,
)


class BackupNotFound(NotFound):
    """No backup by that name."""

    code = "backup_not_found"


class BackupCorrupt(ValidationFailed):
    """A file is missing, truncated, or its checksum does not match the manifest."""

    code = "backup_corrupt"


class BackupKeyError(ValidationFailed):
    """The encryption key is missing, malformed or not the one a set was made with."""

    code = "backup_key"


class BackupToolFailed(ServiceUnavailable):
    """pg_dump, pg_restore or pgbackrest failed or is missing."""

    code = "backup_tool_failed"

    code = "backup_tool_failed"


class BackupInProgress(Conflict):
    """Another create, prune or restore holds the repository's lock."""

    code = "backup_in_progress"


class BackupStoreUnreachable(ServiceUnavailable):
    """A store a backup or restore needs cannot be reached; nothing was changed."""

    code = "backup_store_unreachable"


class BackupRepositoryError(ServiceUnavailable):
    """The backup repository (folder or S3 bucket) cannot be read or written."""

    code = "backup_repository"


class BackupConfigError(BadRequest):
    """A backup setting or option is invalid."""

    code = "backup_config"


class RestoreIncomplete(TemplatorError):
    """Some stores were restored and a later one failed: the state is mixed."""

    status_code = 500
    code = "restore_incomplete"

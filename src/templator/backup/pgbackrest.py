"""PostgreSQL, the physical path: pgBackRest base backups and WAL archive (PITR)."""

from __future__ import annotations

from typing import Any

from templator.config import Settings
from templator.connections import StoreUrls


class Pitr:
    """pgBackRest on a server we configure."""

    kind: str = "incr"

    def backup(self, snap: Any, *, progress: Any) -> dict[str, Any]:
        """Take a base backup."""
        raise NotImplementedError

    def referenced_keys(self) -> set[str]:
        """stored_objects keys now."""
        raise NotImplementedError

    def restore(self, manifest: Any, *, to_time: Any, progress: Any) -> None:
        """Restore."""
        raise NotImplementedError

    def expire(self, kept: Any) -> None:
        """Expire."""
        raise NotImplementedError

    def archive_lag(self) -> float | None:
        """Lag."""
        raise NotImplementedError


def for_server(settings: Settings, urls: StoreUrls) -> Pitr | None:
    """A Pitr when the server of `urls` is the embedded one configured for pgBackRest."""
    return None

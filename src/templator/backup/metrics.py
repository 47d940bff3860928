"""Prometheus gauges of backup freshness, for the monitoring issue's alerts.

A Collector rather than gauges set by the backup commands: `templator backup create`
runs in another process (a timer), so the API's /metrics reads the repository itself.
Reading it lists sets and sums sizes, so the answer is cached for `ttl` seconds and
computed by one scrape at a time; a repository that cannot be read reports
`templator_backup_repository_up 0` instead of failing the whole scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from templator.backup import retention
from templator.backup.create import load_key
from templator.backup.set_store import open_repository
from templator.config import Settings
from templator.exceptions import TemplatorError
from templator.store_urls import StoreUrls


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


class BackupCollector(Collector):
    """templator_backup_* gauges, read from the repository at most every `ttl` seconds."""

    def __init__(
        self, settings: Settings, *, urls: StoreUrls | None = None, ttl: float = 60.0
    ) -> None:
        self.settings = settings
        self.urls = urls
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._cached: list[GaugeMetricFamily] = []

    def _archive_lag(self) -> float | None:
        if not self.settings.backup_pitr:
            return None
        from templator.backup.pgbackrest import for_server
        from templator.connections import resolve_urls

        try:
            urls = self.urls or resolve_urls(self.settings)
            pitr = for_server(self.settings, urls)
            return pitr.archive_lag() if pitr is not None else None
        except (TemplatorError, OSError):
            return None

    def _status(self) -> dict[str, object] | None:
        try:
            repo = open_repository(self.settings)
            key = load_key(self.settings)
            return retention.status(repo, key, archive_lag=self._archive_lag())
        except (TemplatorError, OSError):
            return None

    def _compute(self) -> list[GaugeMetricFamily]:
        status = self._status()
        up = GaugeMetricFamily(
            "templator_backup_repository_up", "1 when the backup repository could be read"
        )
        up.add_metric([], 0.0 if status is None else 1.0)
        if status is None:
            return [up]
        families = [up]

        def gauge(name: str, doc: str, value: object) -> None:
            if isinstance(value, int | float):
                family = GaugeMetricFamily(name, doc)
                family.add_metric([], float(value))
                families.append(family)

        gauge(
            "templator_backup_last_success_timestamp_seconds",
            "Creation time of the newest intact backup set (Unix seconds)",
            _epoch(status["newest_at"]),  # type: ignore[arg-type]
        )
        gauge(
            "templator_backup_last_drill_success_timestamp_seconds",
            "Time of the newest successful restore drill (Unix seconds)",
            _epoch(status["last_successful_drill_at"]),  # type: ignore[arg-type]
        )
        gauge(
            "templator_backup_archive_lag_seconds",
            "Seconds of PostgreSQL writes not yet in the WAL archive (the current RPO)",
            status["archive_lag_seconds"],
        )
        gauge(
            "templator_backup_repository_bytes",
            "Bytes stored in the backup repository",
            status["repository_bytes"],
        )
        sets = GaugeMetricFamily(
            "templator_backup_sets", "Backup sets in the repository", labels=["state"]
        )
        sets.add_metric(["intact"], float(status["sets"]))  # type: ignore[arg-type]
        sets.add_metric(["damaged"], float(len(status["damaged"])))  # type: ignore[arg-type]
        families.append(sets)
        return families

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """The cached gauges, refreshed when older than the TTL."""
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                self._cached = self._compute()
                self._at = time.monotonic()
            return list(self._cached)

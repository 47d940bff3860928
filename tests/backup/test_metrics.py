"""The backup gauges come from the repository, cached between scrapes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from templator.backup import create, retention
from templator.backup.crypto import BackupKey
from templator.backup.metrics import BackupCollector
from templator.backup.set_store import FolderRepository
from tests.backup.conftest import Stores


def _scrape(registry: CollectorRegistry) -> dict[str, float]:
    values = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_gauges_report_the_newest_set_and_are_cached(
    stores: Stores, repo: FolderRepository, key: BackupKey, tmp_path: object
) -> None:
    settings = stores.settings.model_copy(
        update={"backup_repository": str(repo.root), "backup_pitr": False}
    )
    registry = CollectorRegistry()
    collector = BackupCollector(settings, ttl=3600)
    registry.register(collector)
    assert _scrape(registry)["templator_backup_repository_up"] == 1.0
    assert "templator_backup_last_success_timestamp_seconds" not in _scrape(registry)

    manifest = create.create_backup(
        stores.settings, stores.urls, repo, key=key, include_objects=False
    )
    assert "templator_backup_last_success_timestamp_seconds" not in _scrape(registry), "cached"

    collector.ttl = 0
    values = _scrape(registry)
    created = retention._created(manifest).timestamp()
    assert values["templator_backup_last_success_timestamp_seconds"] == created
    assert values["templator_backup_repository_bytes"] > 0
    assert values['templator_backup_sets{state="intact"}'] == 1.0

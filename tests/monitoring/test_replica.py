"""Replication figures on a real primary and a streaming standby made by pg_basebackup."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from templator.config import PROJECT_ROOT, ProcessRole
from templator.dev.localstack.postgres import USER, LocalPostgres
from templator.monitoring.collector import StoreCollector
from templator.monitoring.stores import MetricsConnection, PostgresSource, libpq_url
from tests.monitoring.conftest import Scrape, parse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def primary_and_standby() -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    """A private primary and its hot standby, both stopped and removed afterwards."""
    folder = PROJECT_ROOT / "var" / f"test-replica-{uuid.uuid4().hex[:8]}"
    primary = LocalPostgres(folder / "primary", socket_dir=folder / "run")
    standby = LocalPostgres(folder / "standby", socket_dir=folder / "run-standby")
    try:
        primary.start()
        primary.wait_ready(timeout=180)
        standby.root.mkdir(parents=True)
        if primary.run_as:
            shutil.chown(standby.root, user=primary.run_as)
        copied = subprocess.run(
            [str(primary.bindir / "pg_basebackup"), "-D", str(standby.data), "-h", "127.0.0.1",
             "-p", str(primary.port), "-U", USER, "-R", "-X", "stream"],
            user=primary.run_as, capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "PGPASSWORD": primary.owner_password},
        )  # fmt: skip
        assert copied.returncode == 0, copied.stderr
        standby.start()
        standby.wait_ready(timeout=180)
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def _scrape(url: str) -> Scrape:
    conn = MetricsConnection(url, role=ProcessRole.TEST, timeout=5)
    collector = StoreCollector([PostgresSource(conn, interval=0)], timeout=5)
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        await collector.refresh()
        return parse(generate_latest(registry).decode())
    finally:
        await collector.close()


async def test_the_standby_reports_its_lag_and_the_primary_its_replica(
    primary_and_standby: tuple[LocalPostgres, LocalPostgres],
) -> None:
    primary, standby = primary_and_standby
    with psycopg.connect(libpq_url(primary.admin_url), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS replicated (id int)")
        conn.execute("INSERT INTO replicated VALUES (1)")
    on_standby = await _scrape(standby.url)
    on_primary = await _scrape(primary.url)
    assert on_standby.value("pg_up") == 1
    assert on_standby.value("pg_replication_is_replica") == 1
    assert on_standby.value("pg_replication_lag_seconds") >= 0
    assert on_primary.value("pg_replication_is_replica") == 0
    replicas = on_primary.all("pg_stat_replication_replay_lag_seconds")
    assert len(replicas) == 1
    assert all(
        value >= 0 for value in on_primary.all("pg_stat_replication_replay_lag_bytes").values()
    )

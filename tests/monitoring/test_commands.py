"""`templator monitor`, `db optimize`, `db top` and `cache sweep`, run as operators run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from redis import Redis as SyncRedis

from templator.config import Settings
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.monitoring.stores import libpq_url
from tests.plugins.s3 import ACCESS_KEY, SECRET_KEY
from tests.support.local_postgres import statements_postgres

TEMPLATOR = str(Path(sys.executable).parent / "templator")
# Each test starts the CLI as a process (seconds each on a loaded machine).
pytestmark = pytest.mark.slow


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("S3_")}
    env = {
        **inherited,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "CACHE_NAMESPACE": "sweeptest",
        "VAR_DIR": str(settings.var_dir),
        **extra,
    }
    return env


def _templator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TEMPLATOR, *args], env=env, capture_output=True, text=True, timeout=180)


def _vacuumed(settings: Settings, table: str) -> Any:
    assert settings.database_url
    with psycopg.connect(libpq_url(settings.database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = %s", (table,)
        ).fetchone()
    assert row is not None
    return row[0]


def test_optimize_dry_run_says_what_and_why_and_changes_nothing(settings: Settings) -> None:
    before = _vacuumed(settings, "processing_logs")
    done = _templator(_env(settings), "db", "optimize", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["dry_run"] is True
    by_table = {row["table"]: row for row in plan["tables"]}
    assert {"users", "projects", "ai_sessions", "templates", "processing_logs"} <= set(by_table)
    assert all(row["reason"] for row in by_table.values())
    assert plan["search_words"]["removed"] is False and plan["search_words"]["stale"] >= 0
    assert _vacuumed(settings, "processing_logs") == before


def test_optimize_vacuums_the_chosen_table_with_a_progress_bar(settings: Settings) -> None:
    done = _templator(_env(settings, COLUMNS="120"), "db", "optimize", "--table", "templates")
    assert done.returncode == 0, done.stderr
    assert "vacuumed and analyzed 1 table(s)" in done.stdout
    assert "templates" in done.stdout and "done in" in done.stdout
    assert _vacuumed(settings, "templates") is not None


def test_optimize_names_an_unknown_table_without_a_traceback(settings: Settings) -> None:
    done = _templator(_env(settings), "db", "optimize", "--table", "nope")
    assert done.returncode == 1
    assert "unknown table(s) nope" in done.stderr and "Traceback" not in done.stderr


def test_cache_sweep_removes_only_session_keys_without_ttl_and_never_uses_keys(
    settings: Settings,
) -> None:
    assert settings.redis_url
    redis = SyncRedis.from_url(settings.redis_url)
    for i in range(30):
        redis.set(f"sweeptest:session:{i}:state", "x")  # leftovers: no TTL
        redis.set(f"sweeptest:session:{i}:progress", "x", ex=600)
    redis.set("sweeptest:template:keep", "x")  # not a session key
    keys_before = int(redis.info("commandstats").get("cmdstat_keys", {}).get("calls", 0))
    env = _env(settings)
    counted = _templator(env, "cache", "sweep", "--dry-run", "--json", "--batch", "7")
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout) == {
        "namespace": "sweeptest", "scanned": 60, "without_ttl": 30, "deleted": 0,
        "dry_run": True,
    }  # fmt: skip
    assert redis.exists(*(f"sweeptest:session:{i}:state" for i in range(30))) == 30
    swept = _templator(env, "cache", "sweep", "--batch", "7")
    assert swept.returncode == 0, swept.stderr
    assert "30 without a TTL removed" in swept.stdout
    assert redis.exists(*(f"sweeptest:session:{i}:state" for i in range(30))) == 0
    assert redis.exists(*(f"sweeptest:session:{i}:progress" for i in range(30))) == 30
    assert redis.exists("sweeptest:template:keep") == 1
    keys_after = int(redis.info("commandstats").get("cmdstat_keys", {}).get("calls", 0))
    assert keys_after == keys_before
    redis.delete("sweeptest:template:keep", *(f"sweeptest:session:{i}:progress" for i in range(30)))


def test_db_top_without_the_extension_says_what_to_do(settings: Settings) -> None:
    done = _templator(_env(settings), "db", "top")
    assert done.returncode == 1
    message = " ".join(done.stderr.split())  # Rich wraps at the terminal's width
    assert "pg_stat_statements is not installed" in message
    assert "shared_preload_libraries" in message and "CREATE EXTENSION" in message
    assert "Traceback" not in message


@pytest.fixture(scope="module")
def statements_url() -> Iterator[str]:
    """A PostgreSQL that records statements (pg_stat_statements preloaded), migrated."""
    with statements_postgres() as url:
        yield url


def test_db_top_lists_the_heaviest_statements(settings: Settings, statements_url: str) -> None:
    with psycopg.connect(libpq_url(statements_url), autocommit=True) as conn:
        for _ in range(25):
            conn.execute("SELECT count(*) FROM generate_series(1, 20000)")
    env = _env(settings, DATABASE_URL=statements_url)
    done = _templator(env, "db", "top", "--json", "--limit", "50")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows == sorted(rows, key=lambda r: -r["total_ms"])
    series = [r for r in rows if "generate_series" in r["query"]]
    assert series and series[0]["calls"] == 25 and series[0]["rows"] == 25
    table = _templator({**env, "COLUMNS": "160"}, "db", "top", "--limit", "5")
    assert table.returncode == 0 and "total ms" in table.stdout and "mean ms" in table.stdout


def test_monitor_once_json_reports_every_store(settings: Settings, s3_server: SeaweedFS) -> None:
    env = _env(
        settings,
        S3_ENDPOINT_URL=s3_server.endpoint_url,
        S3_ACCESS_KEY=ACCESS_KEY,
        S3_SECRET_KEY=SECRET_KEY,
        S3_BUCKET="monitor-test",
    )
    done = _templator(env, "monitor", "--once", "--json")
    stores = json.loads(done.stdout)["stores"]
    assert set(stores) == {"postgres", "domain", "redis", "filesystem", "object_store"}
    # the bucket was never created: the object store is down, and the exit code says so
    assert stores["object_store"]["up"] is False
    assert "NoSuchBucket" in stores["object_store"]["error"]
    assert done.returncode == 1
    for name in ("postgres", "domain", "redis", "filesystem"):
        assert stores[name]["up"] is True, stores[name]["error"]
    assert stores["postgres"]["figures"]["max_connections"] > 0
    assert set(stores["domain"]["figures"]) >= {"sessions", "recent_sessions", "templates"}


def test_monitor_once_shows_a_redis_that_is_down(settings: Settings) -> None:
    env = _env(settings, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    done = _templator({**env, "COLUMNS": "120"}, "monitor", "--once")
    assert done.returncode == 1
    assert "Redis DOWN" in done.stdout and "PostgreSQL up" in done.stdout
    assert "Traceback" not in done.stderr

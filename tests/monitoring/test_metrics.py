"""Every store metric on /metrics, read from the running app against real stores."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text

from templator.connections import Connections
from templator.models import AiSession, SessionStatus, Template, TemplateStatus, UserRole
from templator.monitoring.stores import libpq_url
from tests.monitoring.conftest import Scrape, ScrapeFn
from tests.support.factories import Committed, hubspot_config


def _pg(conns: Connections) -> psycopg.Connection[Any]:
    return psycopg.connect(libpq_url(conns.urls.database_url), autocommit=True)


def _flushed(conn: psycopg.Connection[Any]) -> None:
    # PostgreSQL 15 publishes a backend's statistics at most once a second; force it.
    conn.execute("SELECT pg_stat_force_next_flush()")


def _db(conns: Connections) -> str:
    return conns.urls.database_url.rsplit("/", 1)[1]


async def test_postgres_up_connections_and_max(scrape: ScrapeFn, monitored: Connections) -> None:
    with _pg(monitored) as conn:
        max_connections = conn.execute("SHOW max_connections").fetchone()
        assert max_connections is not None
        found = await scrape()
    assert found.value("pg_up") == 1
    assert found.value("pg_settings_max_connections") == int(max_connections[0])
    # this test's own connection, idle, is one of the counted client connections
    assert found.total("pg_stat_activity_count", datname=_db(monitored), state="idle") >= 1
    assert found.total("pg_stat_activity_count") < found.value("pg_settings_max_connections")


async def test_postgres_database_size_and_cache_hits(
    scrape: ScrapeFn, monitored: Connections
) -> None:
    datname = _db(monitored)
    with _pg(monitored) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        found = await scrape()
    assert size is not None
    assert found.value("pg_database_size_bytes", datname=datname) == pytest.approx(
        size[0], rel=0.05
    )
    hits = found.value("pg_stat_database_blks_hit_total", datname=datname)
    reads = found.value("pg_stat_database_blks_read_total", datname=datname)
    assert hits > 0 and reads >= 0


async def test_postgres_commits_rollbacks_temp_bytes_and_deadlocks(
    scrape: ScrapeFn, monitored: Connections
) -> None:
    datname = _db(monitored)
    before = await scrape()
    with _pg(monitored) as first, _pg(monitored) as second:
        first.execute("CREATE TABLE IF NOT EXISTS deadlock_probe (id int PRIMARY KEY)")
        first.execute("INSERT INTO deadlock_probe VALUES (1), (2) ON CONFLICT DO NOTHING")
        with first.transaction(force_rollback=True):
            first.execute("SELECT 1")
        first.execute("SET work_mem = '64kB'")
        first.execute("SELECT count(*) FROM (SELECT g FROM generate_series(1, 100000) g "
                      "ORDER BY g DESC) sorted")  # fmt: skip
        # A real deadlock: each transaction holds the row the other one wants.
        first.execute("BEGIN")
        second.execute("BEGIN")
        first.execute("UPDATE deadlock_probe SET id = id WHERE id = 1")
        second.execute("UPDATE deadlock_probe SET id = id WHERE id = 2")
        outcomes = await asyncio.gather(
            asyncio.to_thread(first.execute, "UPDATE deadlock_probe SET id = id WHERE id = 2"),
            asyncio.to_thread(second.execute, "UPDATE deadlock_probe SET id = id WHERE id = 1"),
            return_exceptions=True,
        )
        # PostgreSQL breaks the cycle by failing one of them
        assert sum(isinstance(o, psycopg.errors.DeadlockDetected) for o in outcomes) == 1
        second.execute("ROLLBACK")
        first.execute("ROLLBACK")
        first.execute("DROP TABLE deadlock_probe")
        _flushed(first)
        _flushed(second)
    after = await scrape()

    def grew(name: str) -> float:
        return after.value(name, datname=datname) - before.value(name, datname=datname)

    assert grew("pg_stat_database_xact_commit_total") >= 3
    assert grew("pg_stat_database_xact_rollback_total") >= 2
    assert grew("pg_stat_database_temp_bytes_total") > 0
    assert grew("pg_stat_database_temp_files_total") >= 1
    assert grew("pg_stat_database_deadlocks_total") == 1


async def test_postgres_longest_transaction_age(scrape: ScrapeFn, monitored: Connections) -> None:
    with _pg(monitored) as conn:
        conn.execute("BEGIN")
        conn.execute("SELECT txid_current()")
        await asyncio.sleep(1.2)
        found = await scrape()
        conn.execute("ROLLBACK")
    ages = found.all(
        "pg_stat_activity_max_tx_duration", datname=_db(monitored), state="idle in transaction"
    )
    assert max(ages.values()) >= 1.2


async def test_postgres_dead_tuples_sizes_and_vacuum_times_per_table(
    scrape: ScrapeFn, monitored: Connections, committed: Committed
) -> None:
    datname = _db(monitored)
    with _pg(monitored) as conn:
        conn.execute(
            "INSERT INTO ai_sessions (id, project_id, user_id) "
            "SELECT 'dead' || g, %s, %s FROM generate_series(1, 50) g",
            (committed.project_id, committed.actor.id),
        )
        conn.execute("DELETE FROM ai_sessions WHERE id LIKE 'dead%'")
        _flushed(conn)
        found = await scrape()
        conn.execute("VACUUM (ANALYZE) templates")
        _flushed(conn)
        vacuumed = await scrape()
    table = {"datname": datname, "schemaname": "public", "relname": "ai_sessions"}
    assert found.value("pg_stat_user_tables_n_dead_tup", **table) >= 50
    assert found.value("pg_stat_user_tables_table_size_bytes", **table) > 0
    assert found.value("pg_stat_user_tables_index_size_bytes", **table) > 0
    # every table of the schema reports when it was last autovacuumed (0 = never yet)
    vacuums = found.all("pg_stat_user_tables_last_autovacuum")
    relnames = {dict(labels)["relname"] for labels in vacuums}
    assert {"users", "projects", "ai_sessions", "templates", "processing_logs"} <= relnames
    templates = {**table, "relname": "templates"}
    last = vacuumed.value("pg_stat_user_tables_last_vacuum", **templates)
    assert abs(last - datetime.now(UTC).timestamp()) < 60


async def test_postgres_transaction_id_age(scrape: ScrapeFn, monitored: Connections) -> None:
    with _pg(monitored) as conn:
        age = conn.execute("SELECT age(datfrozenxid) FROM pg_database "
                           "WHERE datname = current_database()").fetchone()  # fmt: skip
        found = await scrape()
    assert age is not None
    value = found.value("pg_database_wraparound_age_datfrozenxid", datname=_db(monitored))
    assert value > 0 and abs(value - age[0]) < 1000


async def test_postgres_primary_reports_no_replica_lag(scrape: ScrapeFn) -> None:
    found = await scrape()
    assert found.value("pg_replication_is_replica") == 0
    assert ("pg_replication_lag_seconds", frozenset()) not in found.samples


async def test_redis_memory_clients_and_keyspace(scrape: ScrapeFn, monitored: Connections) -> None:
    redis = monitored.redis
    before = await scrape()
    await redis.set("templator-test:probe", "x", ex=60)
    assert await redis.get("templator-test:probe") == b"x"
    assert await redis.get("templator-test:absent") is None
    after = await scrape()
    maxmemory = int((await redis.config_get("maxmemory"))["maxmemory"])
    assert after.value("redis_up") == 1
    assert after.value("redis_memory_used_bytes") > 0
    assert after.value("redis_memory_max_bytes") == maxmemory
    assert after.value("redis_connected_clients") >= 1
    for name in ("redis_keyspace_hits_total", "redis_keyspace_misses_total"):
        assert after.value(name) - before.value(name) >= 1
    assert "redis_evicted_keys_total" in {name for name, _ in after.samples}


async def test_object_store_objects_and_bytes_per_prefix(
    scrape: ScrapeFn, monitored: Connections
) -> None:
    store = monitored.require_store()
    store.client.put_object(Bucket=store.bucket, Key="designs/s1/a.png", Body=b"a" * 100)
    store.client.put_object(Bucket=store.bucket, Key="designs/s2/b.png", Body=b"b" * 50)
    store.client.put_object(Bucket=store.bucket, Key="modules/s1/m.zip", Body=b"m" * 7)
    found = await scrape()
    bucket = store.bucket
    assert found.value("templator_object_store_up") == 1
    assert found.value("templator_object_store_objects", bucket=bucket, prefix="designs/") == 2
    assert found.value("templator_object_store_bytes", bucket=bucket, prefix="designs/") == 150
    assert found.value("templator_object_store_objects", bucket=bucket, prefix="modules/") == 1
    assert found.value("templator_object_store_bytes", bucket=bucket, prefix="modules/") == 7


async def test_filesystem_free_under_the_stack_folder(
    scrape: ScrapeFn, monitored: Connections
) -> None:
    var_dir = monitored.settings.var_dir
    found = await scrape()
    usage = shutil.disk_usage(var_dir)
    assert found.value("templator_filesystem_size_bytes", path=str(var_dir)) == usage.total
    avail = found.value("templator_filesystem_avail_bytes", path=str(var_dir))
    assert avail == pytest.approx(usage.free, rel=0.01)


async def test_sessions_by_status_recent_failures_timings_and_templates_by_status(
    scrape: ScrapeFn, monitored: Connections, committed: Committed
) -> None:
    before = await scrape()
    now = datetime.now(UTC)
    async with monitored.sessionmaker() as session:
        owner = {"project_id": committed.project_id, "user_id": committed.actor.id}
        for status, ms in (
            (SessionStatus.COMPLETED, 1000),
            (SessionStatus.COMPLETED, 3000),
            (SessionStatus.FAILED, None),
            (SessionStatus.PROCESSING, None),
        ):
            finished = now - timedelta(seconds=5) if status.value != "PROCESSING" else None
            session.add(AiSession(**owner, status=status, processing_time=ms, finished_at=finished))
        for template_status in (TemplateStatus.DRAFT, TemplateStatus.PUBLISHED):
            session.add(
                Template(
                    project_id=committed.project_id,
                    name="Hero",
                    html_content="<p></p>",
                    hubspot_config=hubspot_config(),
                    status=template_status,
                )
            )
        await session.commit()
    after = await scrape()

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("templator_sessions", status="COMPLETED") == 2
    assert grew("templator_sessions", status="FAILED") == 1
    assert grew("templator_sessions", status="PROCESSING") == 1
    window = {"window_seconds": "900"}
    assert grew("templator_sessions_finished_recent", status="FAILED", **window) == 1
    assert grew("templator_sessions_finished_recent", status="COMPLETED", **window) == 2
    # Earlier tests of this database finished sessions in the window too: the metric is the
    # median of all of them, which the database states itself.
    async with monitored.sessionmaker() as session:
        median_ms = (
            await session.execute(
                text(
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY processing_time) "
                    "FROM ai_sessions WHERE status = 'COMPLETED' "
                    "AND finished_at > now() - interval '900 seconds'"
                )
            )
        ).scalar_one()
    p50 = after.value("templator_session_processing_seconds", quantile="0.5", **window)
    assert p50 == pytest.approx(median_ms / 1000)
    assert grew("templator_templates", status="DRAFT") == 1
    assert grew("templator_templates", status="PUBLISHED") == 1


async def test_one_label_per_route_whichever_path_answers(
    api: httpx.AsyncClient, scrape: ScrapeFn, caller: Any
) -> None:
    owner = await caller(UserRole.USER)
    project = (
        await api.post("/api/v1/projects", json={"name": "Site"}, headers=owner.headers)
    ).json()
    body = {
        "project_id": project["id"],
        "name": "Hero",
        "html_content": "<p></p>",
        "hubspot_config": hubspot_config(),
    }
    created = await api.post("/api/v1/templates", json=body, headers=owner.headers)
    template_id = created.json()["id"]
    for _ in range(3):  # a miss answered by the route, then hits answered by the fast path
        read = await api.get(f"/api/v1/templates/{template_id}", headers=owner.headers)
        assert read.status_code == 200
    found = await scrape()
    routes = {
        dict(labels)["route"]
        for labels in found.all("templator_http_requests_total", method="GET", status="200")
    }
    assert "/api/v1/templates/{template_id}" in routes
    assert "/templates/{template_id}" not in routes
    count = found.value(
        "templator_http_requests_total",
        method="GET",
        route="/api/v1/templates/{template_id}",
        status="200",
    )
    assert count >= 3


async def test_pool_figures_of_both_pools(scrape: ScrapeFn, monitored: Connections) -> None:
    async with monitored.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        found = await scrape()
    size = monitored.settings.db_pool_size + monitored.settings.db_max_overflow
    assert found.value("templator_db_pool_size", pool="sqlalchemy") == size
    assert found.value("templator_db_pool_connections", pool="sqlalchemy", state="in_use") >= 1
    assert found.value("templator_db_pool_waiting", pool="sqlalchemy") == 0
    read_size = monitored.settings.db_read_pool_size
    assert found.value("templator_db_pool_size", pool="read") == read_size
    assert found.value("templator_db_pool_connections", pool="read", state="in_use") == 0


async def test_every_store_answered_and_the_figures_are_fresh(scrape: ScrapeFn) -> None:
    found: Scrape = await scrape()
    stores = {dict(labels)["store"]: value for labels, value in
              found.all("templator_store_collector_success").items()}  # fmt: skip
    assert stores == {
        "postgres": 1, "domain": 1, "redis": 1, "filesystem": 1, "object_store": 1
    }  # fmt: skip

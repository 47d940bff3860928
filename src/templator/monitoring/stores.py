"""What each store looks like right now: plain JSON-ready figures, gathered with a deadline.

The same figures feed `/metrics` (monitoring/collector.py turns them into metric families),
`templator monitor` and the operator dashboard. Each source answers one store; its
`gather()` may raise, and the caller (the collector's cache) owns timeouts and retries.

PostgreSQL is read on one autocommit connection of its own (never a pool connection: a
pool at its limit must not make the database look down, and the collector's own use must
not show in the pool's figures), reconnected after any failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

from templator.config import ProcessRole
from templator.models.ai_session import LEASED, READY
from templator.redis import RedisClient
from templator.storage.service import ObjectStore

Figures = dict[str, Any]


class Source(Protocol):
    """One store's figures."""

    name: str
    interval: float
    """Seconds its figures may be reused (listing a bucket costs more than INFO)."""

    async def gather(self) -> Figures:
        """The store's figures now; raises when the store cannot answer."""
        ...

    async def close(self) -> None:
        """Release what the source holds."""
        ...


_SERVER = """
SELECT current_database() AS datname,
       current_setting('max_connections')::int AS max_connections,
       current_setting('server_version_num')::int AS version_num,
       pg_is_in_recovery() AS is_replica,
       EXTRACT(EPOCH FROM pg_postmaster_start_time())::float8 AS start_time
"""
# Every state of this database has a row, 0 when no connection is in it (as
# postgres_exporter's pg_stat_activity collector does): a series that vanishes while idle
# would leave `sum(pg_stat_activity_count)` and the alerts on it without data.
_ACTIVITY = """
WITH seen AS (
    SELECT coalesce(datname, '') AS datname, coalesce(state, 'unknown') AS state,
           count(*)::int AS count,
           coalesce(max(EXTRACT(EPOCH FROM clock_timestamp() - xact_start)), 0)::float8
               AS max_tx_duration
    FROM pg_stat_activity
    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
    GROUP BY 1, 2
)
SELECT datname, state, count, max_tx_duration FROM seen
UNION ALL
SELECT current_database()::text, s.state, 0, 0::float8
FROM (VALUES ('active'), ('idle'), ('idle in transaction'),
             ('idle in transaction (aborted)')) AS s(state)
WHERE NOT EXISTS (
    SELECT 1 FROM seen WHERE seen.datname = current_database() AND seen.state = s.state
)
"""
_DATABASE = """
SELECT s.datname, pg_database_size(s.datid) AS size_bytes,
       s.xact_commit, s.xact_rollback, s.blks_read, s.blks_hit, s.deadlocks,
       s.temp_bytes, s.temp_files
FROM pg_stat_database s WHERE s.datid = (SELECT oid FROM pg_database
                                         WHERE datname = current_database())
"""
_WRAPAROUND = """
SELECT datname, age(datfrozenxid)::bigint AS age_datfrozenxid,
       mxid_age(datminmxid)::bigint AS age_datminmxid
FROM pg_database WHERE datallowconn
"""
_TABLES = """
SELECT schemaname, relname, n_live_tup, n_dead_tup,
       coalesce(EXTRACT(EPOCH FROM last_autovacuum), 0)::float8 AS last_autovacuum,
       coalesce(EXTRACT(EPOCH FROM last_vacuum), 0)::float8 AS last_vacuum,
       coalesce(EXTRACT(EPOCH FROM last_autoanalyze), 0)::float8 AS last_autoanalyze,
       pg_table_size(relid) AS table_size_bytes, pg_indexes_size(relid) AS index_size_bytes,
       seq_scan, coalesce(idx_scan, 0) AS idx_scan
FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC
"""
_REPLICA_LAG = """
SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
       END::float8 AS lag_seconds
"""
_REPLICAS = """
SELECT coalesce(application_name, '') AS application_name,
       coalesce(host(client_addr), 'local') AS client_addr, state,
       coalesce(EXTRACT(EPOCH FROM replay_lag), 0)::float8 AS replay_lag_seconds,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8
           AS replay_lag_bytes
FROM pg_stat_replication
"""
_SESSIONS = "SELECT status::text AS status, count(*)::int AS count FROM ai_sessions GROUP BY 1"
_SESSIONS_RECENT = """
SELECT status::text AS status, count(*)::int AS count,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY processing_time) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_time) AS p95_ms
FROM ai_sessions
WHERE finished_at > now() - make_interval(secs => %(window)s)
GROUP BY 1
"""
_TEMPLATES = "SELECT status::text AS status, count(*)::int AS count FROM templates GROUP BY 1"
_TOP = """
SELECT queryid::text AS queryid, query, calls, total_exec_time AS total_ms,
       mean_exec_time AS mean_ms, rows
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC LIMIT %(limit)s
"""
_DUE = "(next_attempt_at IS NULL OR next_attempt_at <= now())"
_QUEUE = f"""
SELECT user_id AS tenant,
       count(*) FILTER (WHERE {READY} AND {_DUE})::int AS ready,
       count(*) FILTER (WHERE {READY} AND NOT {_DUE})::int AS retry_wait,
       count(*) FILTER (WHERE {LEASED} AND lease_expires_at >= now())::int AS processing,
       count(*) FILTER (WHERE {LEASED} AND lease_expires_at < now())::int AS expired,
       EXTRACT(EPOCH FROM now() - min(ready_at) FILTER (WHERE {READY} AND {_DUE}))::float8
           AS oldest_ready_seconds
FROM ai_sessions WHERE ({READY}) OR ({LEASED})
GROUP BY user_id
"""
_DRAFTS = (
    "SELECT count(*)::int AS count FROM ai_sessions WHERE status = 'PENDING' AND ready_at IS NULL"
)
RECENT_WINDOW_SECONDS = 900
"""Sessions finished within this window count as `recent` (failure ratio, timings)."""


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://…) as libpq understands it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class StatementsMissing(Exception):
    """pg_stat_statements is not available in this database; the message says what to do."""


class MetricsConnection:
    """One autocommit psycopg connection for monitoring, made on first use, dropped on error."""

    def __init__(self, url: str, *, role: ProcessRole, timeout: float) -> None:
        self._url = libpq_url(url)
        self._role = role
        self._timeout = timeout
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._url,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, round(self._timeout)),
                application_name=f"templator-{self._role.value}-monitor",
                options=f"-c statement_timeout={int(self._timeout * 1000)}",
            )
        return self._conn

    async def fetch(self, *queries: tuple[str, dict[str, Any] | None]) -> list[list[Figures]]:
        """Run each query in turn; every row as a dict. A failure closes the connection."""
        async with self._lock:
            try:
                conn = await self._connection()
                results = []
                for query, params in queries:
                    cursor = await conn.execute(query, params)
                    results.append(await cursor.fetchall())
                return results
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        """Close the connection (made again on the next fetch)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()


class PostgresSource:
    """Server, database, activity, table and replication figures (postgres_exporter's)."""

    name = "postgres"

    def __init__(self, conn: MetricsConnection, *, interval: float) -> None:
        self.conn = conn
        self.interval = interval

    async def gather(self) -> Figures:
        """The server's figures now."""
        server, activity, database, wraparound, tables = await self.conn.fetch(
            (_SERVER, None), (_ACTIVITY, None), (_DATABASE, None), (_WRAPAROUND, None),
            (_TABLES, None),
        )  # fmt: skip
        info = server[0]
        (replication,) = await self.conn.fetch(
            (_REPLICA_LAG, None) if info["is_replica"] else (_REPLICAS, None)
        )
        db = database[0] if database else {}
        hits, reads = int(db.get("blks_hit", 0)), int(db.get("blks_read", 0))
        return {
            **info,
            "activity": activity,
            "connections": sum(row["count"] for row in activity),
            "database": db,
            "cache_hit_ratio": hits / (hits + reads) if hits + reads else 1.0,
            "wraparound": wraparound,
            "tables": tables,
            "replica_lag_seconds": replication[0]["lag_seconds"] if info["is_replica"] else None,
            "replicas": [] if info["is_replica"] else replication,
        }

    async def close(self) -> None:
        """Close the monitoring connection."""
        await self.conn.close()


class DomainSource:
    """AI sessions by status (recent failures and timings) and templates by status."""

    name = "domain"

    def __init__(self, conn: MetricsConnection, *, interval: float) -> None:
        self.conn = conn
        self.interval = interval

    async def gather(self) -> Figures:
        """Counts by status from the database now."""
        sessions, recent, templates, queue, drafts = await self.conn.fetch(
            (_SESSIONS, None),
            (_SESSIONS_RECENT, {"window": RECENT_WINDOW_SECONDS}),
            (_TEMPLATES, None),
            (_QUEUE, None),
            (_DRAFTS, None),
        )
        return {
            "sessions": {row["status"]: row["count"] for row in sessions},
            "recent_window_seconds": RECENT_WINDOW_SECONDS,
            "recent_sessions": {row["status"]: row for row in recent},
            "templates": {row["status"]: row["count"] for row in templates},
            "queue": queue,
            "drafts": drafts[0]["count"],
        }

    async def close(self) -> None:
        """Nothing of its own (the connection is the PostgreSQL source's)."""


async def top_statements(conn: MetricsConnection, *, limit: int = 10) -> list[Figures]:
    """The heaviest statements of this database by total time (pg_stat_statements)."""
    (installed,) = await conn.fetch(
        (
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') "
            "AS installed, current_setting('shared_preload_libraries') AS preload, "
            "current_database() AS datname",
            None,
        )
    )
    row = installed[0]
    if not row["installed"]:
        preload = "pg_stat_statements" in row["preload"]
        step = (
            f"run `CREATE EXTENSION pg_stat_statements;` in {row['datname']} as a superuser"
            if preload
            else "add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf, "
            f"restart PostgreSQL, then run `CREATE EXTENSION pg_stat_statements;` in "
            f"{row['datname']}"
        )
        raise StatementsMissing(
            f"pg_stat_statements is not installed in database {row['datname']}: {step} "
            "(`templator up` and deploy/docker-compose.yml set this up)"
        )
    (rows,) = await conn.fetch((_TOP, {"limit": limit}))
    for row in rows:
        row["query"] = redact_statement(str(row["query"]))
    return rows


_SECRET_LITERAL = re.compile(
    r"""\b(PASSWORD|SECRET|SECRET_ACCESS_KEY|ACCESS_KEY_ID)
    (\s*=?\s*)('(?:[^']|'')*'|\$\w*\$.*?\$\w*\$)""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


def redact_statement(text: str) -> str:
    """A statement as pg_stat_statements kept it, with the literal after PASSWORD (and
    other secret-bearing words) replaced by '…': pg_stat_statements normalises the
    constants of DML only, so `ALTER ROLE x PASSWORD '…'` keeps its password, and the
    dashboard and `templator db top` show statements to operators."""
    return _SECRET_LITERAL.sub(lambda m: f"{m.group(1)}{m.group(2)}'…'", text)


class RedisSource:
    """INFO figures (redis_exporter's): memory, evictions, keyspace hits, clients, on a
    client the source owns."""

    name = "redis"

    def __init__(self, redis: RedisClient, *, interval: float) -> None:
        self.redis = redis
        self.interval = interval

    async def gather(self) -> Figures:
        """INFO now."""
        info: dict[str, Any] = await self.redis.info()
        keys = {
            name: int(value.get("keys", 0))
            for name, value in info.items()
            if name.startswith("db") and isinstance(value, dict)
        }
        fields = (
            "redis_version", "uptime_in_seconds", "used_memory", "maxmemory",
            "maxmemory_policy", "evicted_keys", "expired_keys", "keyspace_hits",
            "keyspace_misses", "connected_clients", "blocked_clients", "maxclients",
            "total_commands_processed", "instantaneous_ops_per_sec",
        )  # fmt: skip
        figures: Figures = {name: info.get(name) for name in fields}
        figures["db_keys"] = keys
        return figures

    async def close(self) -> None:
        """Close the source's own client."""
        await self.redis.aclose()


class ObjectStoreSource:
    """Object count and bytes per top-level prefix (designs/, modules/…) of the bucket."""

    name = "object_store"

    def __init__(self, store: ObjectStore, *, interval: float) -> None:
        self.store = store
        self.interval = interval

    def _count(self) -> Figures:
        prefixes: dict[str, dict[str, int]] = {}
        for item in self.store.iter_objects():
            prefix = item["key"].split("/", 1)[0] + "/" if "/" in item["key"] else ""
            entry = prefixes.setdefault(prefix, {"objects": 0, "bytes": 0})
            entry["objects"] += 1
            entry["bytes"] += int(item["size"])
        return {"bucket": self.store.bucket, "prefixes": prefixes}

    async def gather(self) -> Figures:
        """List the bucket (in a thread: boto3 blocks)."""
        return await asyncio.to_thread(self._count)

    async def close(self) -> None:
        """The client is the connection layer's."""


class FilesystemSource:
    """Free and total bytes of the filesystems holding the embedded stack and backups."""

    name = "filesystem"

    def __init__(self, paths: Iterable[Path], *, interval: float) -> None:
        self.paths = list(paths)
        self.interval = interval

    def _usage(self) -> Figures:
        seen: set[int] = set()
        found = []
        for path in self.paths:
            try:
                device = os.stat(path).st_dev
            except OSError:
                continue  # not created yet (no stack, no backup): nothing to report
            if device in seen:
                continue
            seen.add(device)
            usage = shutil.disk_usage(path)
            found.append({"path": str(path), "size_bytes": usage.total, "avail_bytes": usage.free})
        return {"filesystems": found}

    async def gather(self) -> Figures:
        """statvfs of each path now."""
        return self._usage()

    async def close(self) -> None:
        """Nothing to release."""

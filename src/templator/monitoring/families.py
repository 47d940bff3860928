"""Store figures as Prometheus metric families, named as operators already know them.

PostgreSQL and Redis metrics take the names of postgres_exporter and redis_exporter
(`pg_up`, `pg_stat_activity_count`, `redis_memory_used_bytes`…), so their dashboards and
alert rules apply; counters carry the `_total` suffix prometheus_client gives every counter
(postgres_exporter's `pg_stat_database_xact_commit` is `pg_stat_database_xact_commit_total`
here). The object store, the filesystem and the domain are ours: `templator_…`.
When a store is down only its `…_up 0` is exported, as the exporters do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from templator.models.enums import SessionStatus, TemplateStatus
from templator.monitoring.stores import Figures


def _gauge(name: str, doc: str, value: float | None = None, **kw: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value, **kw)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def postgres(figures: Figures | None) -> Iterator[Metric]:
    """postgres_exporter's names for the server, database, activity, tables, replication."""
    yield _gauge("pg_up", "Whether the last scrape of PostgreSQL succeeded", 1 if figures else 0)
    if not figures:
        return
    datname = figures["datname"]
    yield _gauge("pg_settings_max_connections", "max_connections", figures["max_connections"])
    yield _gauge(
        "pg_postmaster_start_time_seconds", "Server start, Unix time", figures["start_time"]
    )
    count = _gauge("pg_stat_activity_count", "Client connections", labels=["datname", "state"])
    longest = _gauge(
        "pg_stat_activity_max_tx_duration",
        "Age in seconds of the oldest open transaction",
        labels=["datname", "state"],
    )
    for row in figures["activity"]:
        count.add_metric([row["datname"], row["state"]], row["count"])
        longest.add_metric([row["datname"], row["state"]], row["max_tx_duration"])
    yield count
    yield longest
    db = figures["database"]
    if db:
        size = _gauge("pg_database_size_bytes", "Database size", labels=["datname"])
        size.add_metric([datname], db["size_bytes"])
        yield size
        for column, doc in (
            ("xact_commit", "Transactions committed"),
            ("xact_rollback", "Transactions rolled back"),
            ("blks_read", "Disk blocks read (buffer-cache misses)"),
            ("blks_hit", "Disk blocks found in the buffer cache"),
            ("deadlocks", "Deadlocks detected"),
            ("temp_bytes", "Bytes written to temporary files by queries"),
            ("temp_files", "Temporary files created by queries"),
        ):
            family = CounterMetricFamily(f"pg_stat_database_{column}", doc, labels=["datname"])
            family.add_metric([datname], db[column])
            yield family
    frozen = _gauge(
        "pg_database_wraparound_age_datfrozenxid",
        "Transaction-id age of the database's oldest unfrozen row (wraparound at 2^31)",
        labels=["datname"],
    )
    multixact = _gauge(
        "pg_database_wraparound_age_datminmxid", "Multixact-id age", labels=["datname"]
    )
    for row in figures["wraparound"]:
        frozen.add_metric([row["datname"]], row["age_datfrozenxid"])
        multixact.add_metric([row["datname"]], row["age_datminmxid"])
    yield frozen
    yield multixact
    yield from _tables(datname, figures["tables"])
    yield _gauge(
        "pg_replication_is_replica", "Whether this server is a standby", int(figures["is_replica"])
    )
    if figures["is_replica"]:
        yield _gauge(
            "pg_replication_lag_seconds",
            "Seconds since the last replayed transaction (0 when caught up)",
            figures["replica_lag_seconds"],
        )
    lag = _gauge(
        "pg_stat_replication_replay_lag_seconds",
        "Replay lag of each standby, as the primary sees it",
        labels=["application_name", "client_addr"],
    )
    lag_bytes = _gauge(
        "pg_stat_replication_replay_lag_bytes",
        "WAL bytes each standby has still to replay",
        labels=["application_name", "client_addr"],
    )
    for row in figures["replicas"]:
        labels = [row["application_name"], row["client_addr"]]
        lag.add_metric(labels, row["replay_lag_seconds"])
        lag_bytes.add_metric(labels, row["replay_lag_bytes"])
    yield lag
    yield lag_bytes


def _tables(datname: str, tables: list[Figures]) -> Iterator[Metric]:
    labels = ["datname", "schemaname", "relname"]
    gauges = {
        "n_live_tup": _gauge("pg_stat_user_tables_n_live_tup", "Live rows", labels=labels),
        "n_dead_tup": _gauge("pg_stat_user_tables_n_dead_tup", "Dead rows", labels=labels),
        "last_autovacuum": _gauge(
            "pg_stat_user_tables_last_autovacuum",
            "Unix time of the last autovacuum (0 = never)",
            labels=labels,
        ),
        "last_vacuum": _gauge(
            "pg_stat_user_tables_last_vacuum",
            "Unix time of the last manual vacuum (0 = never)",
            labels=labels,
        ),
        "last_autoanalyze": _gauge(
            "pg_stat_user_tables_last_autoanalyze",
            "Unix time of the last autoanalyze (0 = never)",
            labels=labels,
        ),
        "table_size_bytes": _gauge(
            "pg_stat_user_tables_table_size_bytes", "Table size (with TOAST)", labels=labels
        ),
        "index_size_bytes": _gauge(
            "pg_stat_user_tables_index_size_bytes", "Size of the table's indexes", labels=labels
        ),
    }
    counters = {
        "seq_scan": CounterMetricFamily(
            "pg_stat_user_tables_seq_scan", "Sequential scans", labels=labels
        ),
        "idx_scan": CounterMetricFamily(
            "pg_stat_user_tables_idx_scan", "Index scans", labels=labels
        ),
    }
    for row in tables:
        values = [datname, row["schemaname"], row["relname"]]
        for column, family in gauges.items():
            family.add_metric(values, row[column])
        for column, counter in counters.items():
            counter.add_metric(values, row[column])
    yield from gauges.values()
    yield from counters.values()


def redis(figures: Figures | None) -> Iterator[Metric]:
    """redis_exporter's names for INFO."""
    yield _gauge("redis_up", "Whether the last scrape of Redis succeeded", 1 if figures else 0)
    if not figures:
        return
    yield _gauge("redis_memory_used_bytes", "used_memory", figures["used_memory"])
    yield _gauge("redis_memory_max_bytes", "maxmemory (0 = no limit)", figures["maxmemory"])
    yield _gauge("redis_connected_clients", "connected_clients", figures["connected_clients"])
    yield _gauge("redis_blocked_clients", "blocked_clients", figures["blocked_clients"])
    yield _gauge("redis_config_maxclients", "maxclients", figures["maxclients"])
    yield _gauge("redis_uptime_in_seconds", "uptime_in_seconds", figures["uptime_in_seconds"])
    yield _counter("redis_evicted_keys", "Keys evicted for maxmemory", figures["evicted_keys"])
    yield _counter("redis_expired_keys", "Keys expired", figures["expired_keys"])
    yield _counter("redis_keyspace_hits", "Lookups that found a key", figures["keyspace_hits"])
    yield _counter("redis_keyspace_misses", "Lookups that did not", figures["keyspace_misses"])
    yield _counter(
        "redis_commands_processed", "Commands processed", figures["total_commands_processed"]
    )
    keys = _gauge("redis_db_keys", "Keys per database", labels=["db"])
    for db, count in sorted(figures["db_keys"].items()):
        keys.add_metric([db], count)
    yield keys


def object_store(figures: Figures | None) -> Iterator[Metric]:
    """Objects and bytes per top-level prefix of the bucket."""
    yield _gauge(
        "templator_object_store_up",
        "Whether the last listing of the bucket succeeded",
        0 if not figures else 1,
    )
    if not figures:
        return
    labels = ["bucket", "prefix"]
    objects = _gauge("templator_object_store_objects", "Objects per prefix", labels=labels)
    size = _gauge("templator_object_store_bytes", "Bytes stored per prefix", labels=labels)
    for prefix, entry in sorted(figures["prefixes"].items()):
        objects.add_metric([figures["bucket"], prefix], entry["objects"])
        size.add_metric([figures["bucket"], prefix], entry["bytes"])
    yield objects
    yield size


def filesystem(figures: Figures | None) -> Iterator[Metric]:
    """node_exporter-like free and total bytes of the stack's and backups' filesystems."""
    if not figures:
        return
    avail = _gauge(
        "templator_filesystem_avail_bytes", "Bytes free to unprivileged users", labels=["path"]
    )
    size = _gauge("templator_filesystem_size_bytes", "Filesystem size", labels=["path"])
    for entry in figures["filesystems"]:
        avail.add_metric([entry["path"]], entry["avail_bytes"])
        size.add_metric([entry["path"]], entry["size_bytes"])
    yield avail
    yield size


def domain(figures: Figures | None) -> Iterator[Metric]:
    """AI sessions and templates by status; recent session outcomes and timings."""
    if not figures:
        return
    sessions = _gauge("templator_sessions", "AI sessions by status", labels=["status"])
    for status in SessionStatus:
        sessions.add_metric([status.value], figures["sessions"].get(status.value, 0))
    yield sessions
    window = str(figures["recent_window_seconds"])
    recent = _gauge(
        "templator_sessions_finished_recent",
        "AI sessions that finished within the window, by status",
        labels=["status", "window_seconds"],
    )
    timing = _gauge(
        "templator_session_processing_seconds",
        "Processing time of the sessions completed within the window",
        labels=["quantile", "window_seconds"],
    )
    for status in (SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED):
        row = figures["recent_sessions"].get(status.value)
        recent.add_metric([status.value, window], row["count"] if row else 0)
    done = figures["recent_sessions"].get(SessionStatus.COMPLETED.value)
    if done and done["p50_ms"] is not None:
        timing.add_metric(["0.5", window], done["p50_ms"] / 1000)
        timing.add_metric(["0.95", window], done["p95_ms"] / 1000)
    yield recent
    yield timing
    templates = _gauge("templator_templates", "Templates by status", labels=["status"])
    for template_status in TemplateStatus:
        templates.add_metric(
            [template_status.value], figures["templates"].get(template_status.value, 0)
        )
    yield templates
    yield from queue(figures.get("queue", []), figures.get("drafts", 0))


QUEUE_STATES = ("ready", "retry_wait", "processing", "expired")
TOP_TENANTS = 10
"""Tenants named on /metrics; the rest are summed as `other` (bounded cardinality)."""


def queue(tenants: list[Figures], drafts: int) -> Iterator[Metric]:
    """The work queue: sessions by state for the biggest tenants (the rest as `other`),
    drafts, and the age of the oldest ready session."""
    depth = _gauge(
        "templator_work_queue_sessions",
        "Sessions in the work queue by state (ready: claimable now; retry_wait: in a "
        "retry's backoff; processing: under a live lease; expired: lease ran out, awaiting "
        "the rescuer) and tenant (the 10 biggest by user id, the rest as other)",
        labels=["state", "tenant"],
    )
    ranked = sorted(tenants, key=lambda t: -sum(t[s] for s in QUEUE_STATES))
    other = dict.fromkeys(QUEUE_STATES, 0)
    for rank, tenant in enumerate(ranked):
        for state in QUEUE_STATES:
            if rank < TOP_TENANTS:
                depth.add_metric([state, str(tenant["tenant"])], tenant[state])
            else:
                other[state] += tenant[state]
    for state in QUEUE_STATES:
        depth.add_metric([state, "other"], other[state])
    yield depth
    yield _gauge("templator_work_queue_drafts", "Sessions not submitted yet (drafts)", drafts)
    ages = [t["oldest_ready_seconds"] for t in tenants if t["oldest_ready_seconds"] is not None]
    yield _gauge(
        "templator_work_oldest_ready_seconds",
        "Seconds the oldest claimable session has waited (0 when none is ready)",
        max(ages, default=0.0),
    )


_BY_SOURCE: dict[str, Callable[[Figures | None], Iterator[Metric]]] = {
    "postgres": postgres,
    "redis": redis,
    "object_store": object_store,
    "filesystem": filesystem,
    "domain": domain,
}


def for_source(name: str, figures: Figures | None) -> Iterator[Metric]:
    """The families of source `name` (nothing for a source this module does not know)."""
    render = _BY_SOURCE.get(name)
    if render is not None:
        yield from render(figures)

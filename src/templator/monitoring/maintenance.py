"""Routine upkeep of the stores: stray cache keys in Redis, VACUUM (ANALYZE) in PostgreSQL,
and words of the search vocabulary that no template contains any more.

The keyspace is walked with `SCAN` (a cursor, a few hundred keys per step, other clients
served in between), never `KEYS`, which blocks Redis for as long as the keyspace is
large; keys are checked and deleted in pipelined batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from templator.config import ProcessRole
from templator.exceptions import ValidationFailed
from templator.models.base import Base
from templator.monitoring.stores import MetricsConnection
from templator.redis import RedisClient, by_slot

log = logging.getLogger("templator.maintenance")

# Checked and removed atomically per batch, so a key that gets a TTL between a check and a
# delete is never removed. KEYS = one SCAN batch (bounded), never the whole keyspace.
_UNLINK_WITHOUT_TTL = """
local removed = 0
for _, key in ipairs(KEYS) do
    if redis.call('TTL', key) == -1 then
        removed = removed + redis.call('UNLINK', key)
    end
end
return removed
"""
_COUNT_WITHOUT_TTL = """
local found = 0
for _, key in ipairs(KEYS) do
    if redis.call('TTL', key) == -1 then found = found + 1 end
end
return found
"""


@dataclass(frozen=True, slots=True)
class CacheSweep:
    """What `sweep_session_keys` looked at and removed."""

    scanned: int
    deleted: int


@dataclass(frozen=True, slots=True)
class VacuumReport:
    """Tables vacuumed, in order, and the seconds each took."""

    seconds: dict[str, float] = field(default_factory=dict)


async def sweep_session_keys(
    redis: RedisClient, namespace: str, *, batch: int = 500, dry_run: bool = False
) -> CacheSweep:
    """Delete session keys (`namespace:{session:…`, and `namespace:session:*` of releases
    before the hash tags) that have no TTL, with SCAN in batches (never KEYS).

    Every session key the services write carries a TTL; one without is a leftover (an old
    release, a manual SET) that would otherwise live for ever. Each batch of `batch` keys
    is checked and removed by one short script, atomically (on a Redis Cluster, one
    script per hash slot of the batch, since a script's keys must share a slot).
    `dry_run` only counts. `scanned` counts what SCAN returned, which may name a key
    twice while the keyspace is resized; `deleted` counts the keys the scripts removed.
    """
    if not 1 <= batch <= 10_000:
        raise ValueError(f"batch must be between 1 and 10,000, not {batch}")
    script = redis.register_script(_COUNT_WITHOUT_TTL if dry_run else _UNLINK_WITHOUT_TTL)

    async def check(keys: list[bytes]) -> int:
        counts = await asyncio.gather(*(script(keys=group) for group in by_slot(redis, keys)))
        return sum(int(count) for count in counts)

    scanned = deleted = 0
    for pattern in (f"{namespace}:{{session:*", f"{namespace}:session:*"):
        pending: list[bytes] = []
        async for key in redis.scan_iter(match=pattern, count=batch):
            pending.append(key)
            if len(pending) >= batch:
                scanned += len(pending)
                deleted += await check(pending)
                pending = []
        if pending:
            scanned += len(pending)
            deleted += await check(pending)
    if deleted and not dry_run:
        log.info("cache sweep: %d of %d session keys had no TTL and were removed", deleted, scanned)
    return CacheSweep(scanned=scanned, deleted=deleted)


def table_names() -> list[str]:
    """Every table of the schema, parents before children."""
    return [table.name for table in Base.metadata.sorted_tables]


_VACUUM_PLAN = """
SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze,
       greatest(last_vacuum, last_autovacuum) AS last_vacuum,
       greatest(last_analyze, last_autoanalyze) AS last_analyze,
       pg_table_size(relid) AS size_bytes
FROM pg_stat_user_tables WHERE schemaname = 'public'
"""


def vacuum_reason(row: dict[str, Any]) -> str:
    """Why VACUUM ANALYZE is worth running on a table, in the operator's words."""
    reasons = []
    live, dead = int(row["n_live_tup"]), int(row["n_dead_tup"])
    if dead:
        share = dead / (live + dead) if live + dead else 1.0
        reasons.append(f"{dead:,} dead rows ({share:.0%}) to reclaim")
    if row["last_analyze"] is None:
        reasons.append("never analyzed: the planner guesses its row counts")
    elif int(row["n_mod_since_analyze"]):
        reasons.append(f"{int(row['n_mod_since_analyze']):,} rows changed since the last analyze")
    if row["last_vacuum"] is None:
        reasons.append("never vacuumed")
    return "; ".join(reasons) or "up to date (refreshes statistics and the visibility map)"


async def vacuum_plan(
    database_url: str, *, role: ProcessRole, tables: list[str] | None = None
) -> list[dict[str, Any]]:
    """Each chosen table's statistics (pg_stat_user_tables) and `reason`, in the order
    VACUUM would take them; ValidationFailed names a table the schema does not have."""
    order = table_names()
    chosen = tables or order
    unknown = [name for name in chosen if name not in order]
    if unknown:
        raise ValidationFailed(
            f"unknown table(s) {', '.join(unknown)}; known: {', '.join(sorted(order))}",
            field="--table",
        )
    conn = MetricsConnection(database_url, role=role, timeout=10)
    try:
        (rows,) = await conn.fetch((_VACUUM_PLAN, None))
    finally:
        await conn.close()
    stats = {row["relname"]: row for row in rows}
    return [
        {**stats[name], "table": name, "reason": vacuum_reason(stats[name])}
        for name in chosen
        if name in stats
    ]


async def vacuum_analyze(
    engine: AsyncEngine,
    *,
    tables: Sequence[str] | None = None,
    on_table: Callable[[str, float], None] | None = None,
) -> VacuumReport:
    """Run VACUUM (ANALYZE) on each table in turn, on an AUTOCOMMIT connection.

    VACUUM cannot run inside a transaction block, and one statement per table keeps each
    step short and lets the caller report progress.
    """
    known = set(table_names())
    chosen = list(tables) if tables is not None else table_names()
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ValueError(
            f"unknown table(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    report = VacuumReport()
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in chosen:
            quoted = auto.dialect.identifier_preparer.quote(name)
            started = time.perf_counter()
            await auto.execute(text(f"VACUUM (ANALYZE) {quoted}"))
            seconds = time.perf_counter() - started
            report.seconds[name] = seconds
            if on_table is not None:
                on_table(name, seconds)
    return report


# Words no template's search document contains (deleted or edited away). ts_stat reads
# every document once; a word whose template commits meanwhile is not visible to this
# statement's snapshot and stays.
_STALE_WORDS = (
    "FROM search_words w WHERE NOT EXISTS (SELECT FROM ts_stat("
    "'SELECT search_vector FROM templates') s WHERE s.word = w.word)"
)


async def prune_search_words(engine: AsyncEngine, *, dry_run: bool = False) -> int:
    """Remove (with `dry_run`, count) the words of search_words that no template contains,
    so the words of deleted templates (an erased user's among them) leave the database
    and are no longer offered as spellings."""
    async with engine.begin() as conn:
        if dry_run:
            return int((await conn.execute(text(f"SELECT count(*) {_STALE_WORDS}"))).scalar_one())
        return int((await conn.execute(text(f"DELETE {_STALE_WORDS}"))).rowcount)

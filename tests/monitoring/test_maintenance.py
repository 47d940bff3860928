"""Cache sweep with SCAN (never KEYS) and VACUUM (ANALYZE) per table."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from templator.connections import Connections
from templator.monitoring.maintenance import sweep_session_keys, table_names, vacuum_analyze

NS = "templator-test"


async def _seed_keys(redis: Redis) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(1_200):  # more than one SCAN batch
            pipe.set(f"{NS}:session:stray{i}:state", "x")
        for i in range(50):
            pipe.set(f"{NS}:session:live{i}:state", "x", ex=300)
        pipe.set(f"{NS}:template:stray", "x")  # another family: not ours to sweep
        pipe.set("other:session:stray:state", "x")  # another namespace
        await pipe.execute()


async def test_sweep_deletes_session_keys_without_ttl_and_keeps_the_rest(redis: Redis) -> None:
    await _seed_keys(redis)

    sweep = await sweep_session_keys(redis, NS, batch=100)

    assert sweep.deleted == 1_200  # counted from the scripts' UNLINKs: exact
    # SCAN returns every key present throughout at least once, and may return one twice
    # while the deletions shrink (rehash) the keyspace.
    assert sweep.scanned >= 1_250
    assert await redis.exists(*(f"{NS}:session:live{i}:state" for i in range(50))) == 50
    assert await redis.exists(f"{NS}:template:stray", "other:session:stray:state") == 2
    assert not [k async for k in redis.scan_iter(match=f"{NS}:session:stray*")]


async def test_sweep_dry_run_counts_without_deleting(redis: Redis) -> None:
    await _seed_keys(redis)

    sweep = await sweep_session_keys(redis, NS, batch=500, dry_run=True)

    assert sweep.deleted == 1_200
    assert await redis.exists(f"{NS}:session:stray0:state") == 1


async def test_sweep_never_sends_keys(redis: Redis) -> None:
    await _seed_keys(redis)
    before = await redis.info("commandstats")

    await sweep_session_keys(redis, NS)

    after = await redis.info("commandstats")
    keys_calls = lambda stats: stats.get("cmdstat_keys", {}).get("calls", 0)  # noqa: E731
    assert keys_calls(after) == keys_calls(before)
    assert after["cmdstat_scan"]["calls"] > before.get("cmdstat_scan", {}).get("calls", 0)


async def test_sweep_refuses_an_unreasonable_batch(redis: Redis) -> None:
    with pytest.raises(ValueError, match="batch must be between 1 and 10,000"):
        await sweep_session_keys(redis, NS, batch=0)


async def test_vacuum_analyze_runs_on_every_table_and_updates_statistics(
    connections: Connections,
) -> None:
    seen: list[str] = []

    report = await vacuum_analyze(connections.engine, on_table=lambda name, _s: seen.append(name))

    assert seen == table_names() == list(report.seconds)
    async with connections.engine.connect() as conn:
        analysed = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_user_tables "
                    "WHERE relname = ANY(:names) AND last_vacuum IS NOT NULL "
                    "AND last_analyze IS NOT NULL"
                ),
                {"names": seen},
            )
        ).scalar_one()
    assert analysed == len(seen)


async def test_vacuum_refuses_an_unknown_table_naming_it(connections: Connections) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        await vacuum_analyze(connections.engine, tables=["users; DROP TABLE users"])

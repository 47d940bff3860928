"""Log ingestion: LogService.append_many (one COPY per batch) vs raw psycopg COPY.

Both sides write the same 10,000-line batches (varied messages, a third with JSON data)
into one session, each batch its own transaction. Targets (issue #4): >= 100k rows/s
and >= 0.8x raw COPY.

    .venv/bin/python -m benchmarks.bench_log_ingestion [--quick]
"""

from __future__ import annotations

import asyncio
import time

import orjson
import psycopg

from benchmarks.common import machine, parser, raw_dsn, seeded_database
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.kit.actor import Actor
from templator.kit.ids import new_ids
from templator.kit.uow import unit_of_work
from templator.models import LogLevel, UserRole
from templator.processing_log.schemas import LogLine
from templator.processing_log.service import LogService

BATCH = 10_000
LEVELS = list(LogLevel)


def make_lines() -> list[LogLine]:
    """Validated input, as the API or a worker hands it over (validation is not timed)."""
    return [
        LogLine(
            level=LEVELS[i % 4],
            phase="ai_analysis",
            message=f"component {i % 97} analysed in {i % 1000} ms",
            data={"i": i, "tokens": i * 3} if i % 3 == 0 else None,
        )
        for i in range(BATCH)
    ]


async def main(batches: int, quick: bool) -> None:
    lines = make_lines()
    with seeded_database(quick=quick) as url:
        dsn = raw_dsn(url)
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT id, user_id FROM ai_sessions LIMIT 1").fetchone()
        assert row is not None
        session_id, user_id = row
        actor = Actor(user_id, UserRole.USER)
        settings = Settings(_env_file=None, database_url=url, redis_url="redis://127.0.0.1:6379/13")  # type: ignore[call-arg]
        conns = Connections(
            settings, urls=StoreUrls(url, "redis://127.0.0.1:6379/13", None), role=ProcessRole.BENCH
        )
        raw = await psycopg.AsyncConnection.connect(dsn)
        ours_s = raw_s = 0.0
        for _ in range(batches):
            started = time.perf_counter()
            async with unit_of_work(conns.sessionmaker, conns.cache) as session:
                await LogService(session).append_many(actor, session_id, lines)
            ours_s += time.perf_counter() - started

            started = time.perf_counter()
            ids = new_ids(BATCH)
            async with (
                raw.transaction(),
                raw.cursor().copy(
                    "COPY processing_logs (id, session_id, level, phase, message, data) FROM STDIN"
                ) as copy,
            ):
                for log_id, line in zip(ids, lines, strict=True):
                    data = orjson.dumps(line.data).decode() if line.data is not None else None
                    await copy.write_row(
                        (log_id, session_id, line.level.value, line.phase, line.message, data)
                    )
            raw_s += time.perf_counter() - started
        await raw.close()
        await conns.close()
    rows = batches * BATCH
    print(machine())
    print(f" ours: {rows / ours_s:>10,.0f} rows/s  (append_many, {batches} batches of {BATCH:,})")
    print(f"  raw: {rows / raw_s:>10,.0f} rows/s  (psycopg COPY write_row)")
    print(
        f"ratio ours/raw: {raw_s / ours_s:.2f}x (target >= 0.8x); ours vs 100k rows/s: {rows / ours_s / 100_000:.2f}x"
    )


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    asyncio.run(main(batches=5 if args.quick else 20, quick=args.quick))

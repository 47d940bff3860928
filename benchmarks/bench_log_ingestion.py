"""Log ingestion: LogService.append_many (one COPY per batch) vs raw psycopg COPY.

Both sides write the same 10,000-line batches (varied messages, a third with JSON data)
into one session, each batch its own transaction, alternating sides. Targets (issue #4):
>= 100k rows/s and >= 0.8x raw COPY. Database choice and guard as in
bench_session_lifecycle (`--database-url`, `--yes`; default: a scratch database).

    .venv/bin/python -m benchmarks.bench_log_ingestion [--quick] [--batch 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson
import psycopg

from benchmarks.bench_session_lifecycle import add_database_options, bench_database, bench_owner
from benchmarks.common import machine, parser, raw_dsn
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.kit.actor import Actor
from templator.kit.ids import new_ids
from templator.kit.uow import unit_of_work
from templator.models import LogLevel, UserRole
from templator.processing_log.schemas import LogLine
from templator.processing_log.service import LogService

LEVELS = list(LogLevel)
NULL = "\\N"


def make_lines(batch: int) -> list[LogLine]:
    """Validated input, as the API or a worker hands it over (validation is not timed)."""
    return [
        LogLine(
            level=LEVELS[i % 4],
            phase="ai_analysis",
            message=f"component {i % 97} analysed in {i % 1000} ms",
            data={"i": i, "tokens": i * 3} if i % 3 == 0 else None,
        )
        for i in range(batch)
    ]


async def main(args: argparse.Namespace) -> None:
    batches, batch = (5 if args.quick else args.batches), args.batch
    lines = make_lines(batch)
    with (
        bench_database(args.database_url, yes=args.yes, quick=args.quick) as url,
        bench_owner(raw_dsn(url), with_session=True) as (user_id, _, session_id),
    ):
        dsn = raw_dsn(url)
        actor = Actor(user_id, UserRole.USER)
        settings = Settings(_env_file=None, database_url=url, redis_url="redis://127.0.0.1:6379/13")
        conns = Connections(
            settings, urls=StoreUrls(url, "redis://127.0.0.1:6379/13", None), role=ProcessRole.BENCH
        )
        raw = await psycopg.AsyncConnection.connect(dsn)
        ours_s = raw_s = block_s = 0.0
        copy_sql = "COPY processing_logs (id, session_id, level, phase, message, data) FROM STDIN"
        for _ in range(batches):
            started = time.perf_counter()
            async with unit_of_work(conns.sessionmaker, conns.cache) as session:
                await LogService(session).append_many(actor, session_id, lines)
            ours_s += time.perf_counter() - started

            started = time.perf_counter()
            ids = new_ids(batch)
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

            # The fastest hand-written form: one text block, no escaping (known-clean input).
            started = time.perf_counter()
            block = "".join(
                f"{log_id}\t{session_id}\t{line.level.value}\t{line.phase}\t{line.message}\t"
                f"{orjson.dumps(line.data).decode() if line.data is not None else NULL}\n"
                for log_id, line in zip(new_ids(batch), lines, strict=True)
            )
            async with raw.transaction(), raw.cursor().copy(copy_sql) as copy:
                await copy.write(block)
            block_s += time.perf_counter() - started
        await raw.close()
        await conns.close()
    rows = batches * batch
    print(machine())
    print(f" ours: {rows / ours_s:>10,.0f} rows/s  (append_many, {batches} batches of {batch:,})")
    print(f"  raw: {rows / raw_s:>10,.0f} rows/s  (psycopg COPY write_row)")
    print(f"block: {rows / block_s:>10,.0f} rows/s  (psycopg COPY, one pre-built text block)")
    print(
        f"ratio ours/raw: {raw_s / ours_s:.2f}x (target >= 0.8x); ours/block: "
        f"{block_s / ours_s:.2f}x; ours vs 100k rows/s: {rows / ours_s / 100_000:.2f}x"
    )


if __name__ == "__main__":
    p = parser(__doc__ or "")
    p.add_argument("--batches", type=int, default=20, help="batches per side")
    p.add_argument("--batch", type=int, default=10_000, help="lines per batch (max 10,000)")
    add_database_options(p)
    asyncio.run(main(p.parse_args()))

"""Log ingestion: LogService.append_many (one COPY per batch) vs raw psycopg COPY.

Both sides write the same 10,000-line batches (varied messages, a third with JSON data)
into one session, each batch its own transaction, alternating sides; `--writers`
concurrent writers per side (default 2: workers append at once, and PostgreSQL checks
each row's foreign key and updates two indexes in its own backend, one core each). Targets (issue #4):
>= 100k rows/s and >= 0.8x raw COPY. Database choice and guard as in
bench_session_lifecycle (`--database-url`, `--yes`; default: a scratch database).

    .venv/bin/python -m benchmarks.bench_log_ingestion [--quick] [--batch 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import orjson
import psycopg
import uvloop

from benchmarks.bench_session_lifecycle import add_database_options, bench_database, bench_owner
from benchmarks.common import bench_redis_url, machine, parser, raw_dsn
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


COPY_SQL = "COPY processing_logs (id, session_id, level, phase, message, data) FROM STDIN"


async def raw_rows(
    conn: psycopg.AsyncConnection[Any], session_id: str, lines: list[LogLine]
) -> None:
    """The baseline: psycopg's COPY with write_row, one transaction."""
    ids = new_ids(len(lines))
    async with conn.transaction(), conn.cursor().copy(COPY_SQL) as copy:
        for log_id, line in zip(ids, lines, strict=True):
            data = orjson.dumps(line.data).decode() if line.data is not None else None
            await copy.write_row(
                (log_id, session_id, line.level.value, line.phase, line.message, data)
            )


async def raw_block(
    conn: psycopg.AsyncConnection[Any], session_id: str, lines: list[LogLine]
) -> None:
    """The fastest hand-written form: one text block, no escaping (known-clean input)."""
    block = "".join(
        f"{log_id}\t{session_id}\t{line.level.value}\t{line.phase}\t{line.message}\t"
        f"{orjson.dumps(line.data).decode() if line.data is not None else NULL}\n"
        for log_id, line in zip(new_ids(len(lines)), lines, strict=True)
    )
    async with conn.transaction(), conn.cursor().copy(COPY_SQL) as copy:
        await copy.write(block)


async def main(args: argparse.Namespace) -> None:
    rounds, batch, writers = (3 if args.quick else args.batches), args.batch, args.writers
    lines = make_lines(batch)
    with (
        bench_database(args.database_url, yes=args.yes, quick=args.quick) as url,
        bench_owner(raw_dsn(url), with_session=True) as (user_id, _, session_id),
    ):
        dsn = raw_dsn(url)
        actor = Actor(user_id, UserRole.USER)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            redis_url=bench_redis_url(13),
            db_pool_size=writers + 1,
        )
        conns = Connections(
            settings, urls=StoreUrls(url, bench_redis_url(13), None), role=ProcessRole.BENCH
        )
        raws = [await psycopg.AsyncConnection.connect(dsn) for _ in range(writers)]

        async def ours_one() -> None:
            async with unit_of_work(conns.sessionmaker, conns.cache) as session:
                await LogService(session, conns.cache).append_many(actor, session_id, lines)

        seconds = {"ours": 0.0, "raw": 0.0, "block": 0.0}
        for _ in range(rounds):  # alternating sides, `writers` concurrent batches each
            started = time.perf_counter()
            await asyncio.gather(*(ours_one() for _ in range(writers)))
            seconds["ours"] += time.perf_counter() - started
            started = time.perf_counter()
            await asyncio.gather(*(raw_rows(c, session_id, lines) for c in raws))
            seconds["raw"] += time.perf_counter() - started
            started = time.perf_counter()
            await asyncio.gather(*(raw_block(c, session_id, lines) for c in raws))
            seconds["block"] += time.perf_counter() - started
        for conn in raws:
            await conn.close()
        await conns.close()
    rows = rounds * batch * writers
    rate = {side: rows / s for side, s in seconds.items()}
    print(machine())
    print(f"{writers} concurrent writers, {rounds} rounds of {batch:,}-line batches per writer")
    print(f" ours: {rate['ours']:>10,.0f} rows/s  (LogService.append_many)")
    print(f"  raw: {rate['raw']:>10,.0f} rows/s  (psycopg COPY write_row)")
    print(f"block: {rate['block']:>10,.0f} rows/s  (psycopg COPY, one pre-built text block)")
    print(
        f"ratio ours/raw: {rate['ours'] / rate['raw']:.2f}x (target >= 0.8x); ours/block: "
        f"{rate['ours'] / rate['block']:.2f}x; ours vs 100k rows/s: {rate['ours'] / 100_000:.2f}x"
    )


if __name__ == "__main__":
    p = parser(__doc__ or "")
    p.add_argument("--batches", type=int, default=10, help="rounds per side")
    p.add_argument(
        "--writers",
        type=int,
        default=2,
        help="concurrent writers per side (workers appending at once; 2 = this machine's cores)",
    )
    p.add_argument("--batch", type=int, default=10_000, help="lines per batch (max 10,000)")
    add_database_options(p)
    uvloop.run(main(p.parse_args()))  # as the API's uvicorn workers run

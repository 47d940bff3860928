"""The API's hot read while Redis is down, in-process: token check and template load.

What `GET /api/v1/templates/{id}` costs when nothing can come from the cache, without
HTTP, in one process on uvloop, one read at a time over 2,000 random templates of the
seeded database:

* ours — `api.fastpath.uncached_read` on the asyncpg `ReadPool`: `load_with_token` (one
  statement), `verify`, the read check and the JSON form built from the row;
* the route's way — two autocommit SQLAlchemy read sessions (TokenRepository.lookup,
  TemplateRepository.load), then the same checks and JSON form;
* the candidate that would replace asyncpg (issue #20): the same statement, checks and
  JSON form on a tuned psycopg pool — connections kept in a deque behind the same
  first-come-first-served semaphore as `ReadPool`, a kept cursor per connection,
  prepared on first use, binary results, orjson for JSON;
* baselines — the same one statement on a single raw asyncpg connection, and on a
  single raw psycopg connection with a kept cursor.

Prints reads/s and CPU µs per read (time.process_time: the figure that decides
throughput on 2 cores), and ours / raw asyncpg.

    BENCH_DATABASE_URL=$BF .venv/bin/python -m benchmarks.bench_hot_read [--quick]
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import orjson
import psycopg
import uvloop
from psycopg.types.json import set_json_loads
from psycopg.types.string import TextBinaryLoader

from benchmarks.common import (
    admin_with_token,
    bench_redis_url,
    machine,
    parser,
    raw_dsn,
    seeded_database,
)
from templator.api.fastpath import uncached_read
from templator.api.hot_read import READ_WITH_TOKEN as _READ_WITH_TOKEN
from templator.auth.repository import TokenRepository
from templator.auth.service import TokenRecord, parse, token_record, verify
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.kit.uow import read_session
from templator.template.repository import LoadedTemplate, TemplateRepository
from templator.template.service import may_read, public_json, template_json

REDIS_URL = bench_redis_url(15)
ROUNDS = 5


class PsycopgReadPool:
    """The candidate: `ReadPool.fetchrow`'s contract on psycopg, tuned (see the docstring)."""

    def __init__(self, conns: list[psycopg.AsyncConnection[Any]]) -> None:
        self._idle = deque((conn, conn.cursor(binary=True)) for conn in conns)
        self._turns = asyncio.Semaphore(len(conns))
        self._statements: dict[str, str] = {}

    @classmethod
    async def open(cls, dsn: str, size: int) -> PsycopgReadPool:
        conns = []
        for _ in range(size):
            conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
            set_json_loads(orjson.loads, conn)
            # Enums arrive as text, as asyncpg gives them (binary has no loader for them).
            cursor = await conn.execute("SELECT oid FROM pg_type WHERE typtype = 'e'")
            for (oid,) in await cursor.fetchall():
                conn.adapters.register_loader(oid, TextBinaryLoader)
            conns.append(conn)
        return cls(conns)

    async def fetchrow(self, query: str, *args: Any) -> Sequence[Any] | None:
        """`ReadPool.fetchrow`: `query` with asyncpg's $n placeholders."""
        statement = self._statements.get(query)
        if statement is None:
            statement = re.sub(r"\$\d+", "%s", query)
            self._statements[query] = statement
        async with self._turns:
            conn, cursor = self._idle.popleft()
            try:
                await cursor.execute(statement, args, prepare=True)
                return await cursor.fetchone()
            finally:
                self._idle.append((conn, cursor))

    async def close(self) -> None:
        for conn, _ in self._idle:
            await conn.close()


async def run(reads: int) -> None:
    with seeded_database(quick=reads < 10_000) as url:
        settings = Settings(_env_file=None, database_url=url, redis_url=REDIS_URL)  # type: ignore[call-arg]
        conns = Connections(settings, urls=StoreUrls(url, REDIS_URL, None), role=ProcessRole.BENCH)
        await conns.open_read_pool()
        assert conns.read_pool is not None
        admin_id, token = await admin_with_token(conns, name="bench-hot-read")
        prefix, secret = parse(token)
        raw_pg = await psycopg.AsyncConnection.connect(raw_dsn(url), autocommit=True)
        cursor = raw_pg.cursor()
        ids = [
            r[0]
            for r in await (await raw_pg.execute("SELECT id FROM templates LIMIT 2000")).fetchall()
        ]
        raw_apg = await asyncpg.connect(raw_dsn(url))
        rng = random.Random(1)
        order = [rng.choice(ids) for _ in range(reads)]
        psycopg_sql = _READ_WITH_TOKEN.replace("$1", "%s").replace("$2", "%s")
        candidate = await PsycopgReadPool.open(raw_dsn(url), settings.db_read_pool_size)

        def answer(record: TokenRecord, row: LoadedTemplate) -> bytes:
            actor = verify(record, secret)
            data = template_json(row)
            assert may_read(actor, data)
            return public_json(data)

        async def ours(tid: str) -> None:
            assert await uncached_read(conns.read_pool, prefix, secret, tid) is not None  # type: ignore[arg-type]

        async def psycopg_pool(tid: str) -> None:
            assert await uncached_read(candidate, prefix, secret, tid) is not None  # type: ignore[arg-type]

        async def route_way(tid: str) -> None:
            async with read_session(conns.read_sessionmaker) as s:
                looked_up = await TokenRepository(s).lookup(prefix)
            async with read_session(conns.read_sessionmaker) as s:
                row = await TemplateRepository(s).load(tid)
            assert looked_up is not None and row is not None
            answer(token_record(looked_up), row)

        async def asyncpg_raw(tid: str) -> None:
            assert await raw_apg.fetchrow(_READ_WITH_TOKEN, prefix, tid) is not None

        async def psycopg_raw(tid: str) -> None:
            await cursor.execute(psycopg_sql, (prefix, tid))
            assert await cursor.fetchone() is not None

        sides: list[tuple[str, Callable[[str], Awaitable[None]]]] = [
            ("ours: ReadPool + load_with_token + checks", ours),
            ("the route's way: 2 SQLAlchemy sessions", route_way),
            ("candidate: tuned psycopg pool + checks", psycopg_pool),
            ("raw asyncpg, one connection", asyncpg_raw),
            ("raw psycopg, one connection, kept cursor", psycopg_raw),
        ]
        for _, fn in sides:
            for tid in order[:300]:  # warm: connections, prepared statements
                await fn(tid)
        # Rounds of a slice each, the sides taking turns, so a burst of load elsewhere on
        # the machine hits every side alike; the median round of each side is reported.
        slices = [order[i::ROUNDS] for i in range(ROUNDS)]
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in sides}
        for part in slices:
            for name, fn in sides:
                started, cpu = time.perf_counter(), time.process_time()
                for tid in part:
                    await fn(tid)
                wall, used = time.perf_counter() - started, time.process_time() - cpu
                samples[name].append((len(part) / wall, used / len(part) * 1e6))
        results = {
            name: sorted(runs, key=lambda r: r[1])[ROUNDS // 2] for name, runs in samples.items()
        }
        for name, (rate, cpu_us) in results.items():
            spread = ", ".join(f"{r[1]:.0f}" for r in samples[name])
            print(f"{name:<44} {rate:>8,.0f} reads/s  {cpu_us:6.1f} µs CPU/read (rounds: {spread})")
        ours_cpu = results[sides[0][0]][1]
        raw_cpu = results[sides[3][0]][1]
        candidate_cpu = results[sides[2][0]][1]
        route_cpu = results[sides[1][0]][1]
        print(
            f"CPU per read: ours {ours_cpu:.0f} µs = {ours_cpu / raw_cpu:.2f}x raw asyncpg's "
            f"{raw_cpu:.0f} µs; the route's way {route_cpu:.0f} µs = {route_cpu / ours_cpu:.1f}x ours; "
            f"on a tuned psycopg pool {candidate_cpu:.0f} µs = {candidate_cpu / ours_cpu:.2f}x ours"
        )
        await raw_pg.execute("DELETE FROM users WHERE id = %s", (admin_id,))  # and its token
        await candidate.close()
        await raw_apg.close()
        await raw_pg.close()
        await conns.close()


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    print(machine())
    uvloop.run(run(3_000 if args.quick else 20_000))

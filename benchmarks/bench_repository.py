"""Primary-key read and single-row insert: our repository layer vs raw psycopg.

Both sides run in the same process, on one connection each, against the same freshly
migrated scratch database, alternating rounds so neither gets a warmer cache.
Target (issue #2): ours >= 0.5x raw throughput.

    .venv/bin/python -m benchmarks.bench_repository [--quick]
"""

from __future__ import annotations

import psycopg
import uvloop
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.common import (
    Clock,
    bench_redis_url,
    machine,
    parser,
    ratio_line,
    raw_dsn,
    scratch_database,
)
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.kit.ids import new_id
from templator.user.repository import UserRepository
from templator.user.schemas import UserCreate

SELECT = "SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = %s"
INSERT = (
    "INSERT INTO users (id, email, name, role) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (email) DO NOTHING RETURNING id, email, name, role, created_at, updated_at"
)


async def main(rounds: int, per_round: int) -> None:
    with scratch_database() as url:
        settings = Settings(_env_file=None, database_url=url, redis_url=bench_redis_url(15))  # type: ignore[call-arg]
        conns = Connections(
            settings, urls=StoreUrls(url, bench_redis_url(15), None), role=ProcessRole.BENCH
        )
        raw = await psycopg.AsyncConnection.connect(raw_dsn(url), autocommit=False)
        ours_read, raw_read = Clock("repository get (PK read)"), Clock("raw psycopg PK read")
        ours_ins, raw_ins = Clock("repository insert (1 row)"), Clock("raw psycopg insert")
        async with conns.sessionmaker() as session:
            assert isinstance(session, AsyncSession)
            repo = UserRepository(session)
            ids: list[str] = []
            for r in range(rounds):
                # Input models are validated by the caller (API/service), not the repository.
                batch = [UserCreate(email=f"o{r}-{i}@bench.example") for i in range(per_round)]
                for data in batch:
                    with ours_ins.op():
                        user = await repo.insert(data)
                    ids.append(user.id)
                await session.commit()
                async with raw.cursor() as cur:
                    for i in range(per_round):
                        with raw_ins.op():
                            await cur.execute(
                                INSERT, (new_id(), f"r{r}-{i}@bench.example", None, "USER")
                            )
                            await cur.fetchone()
                await raw.commit()
                for user_id in ids[-per_round:]:
                    with ours_read.op():
                        await repo.get(user_id)
                await session.commit()
                async with raw.cursor() as cur:
                    for user_id in ids[-per_round:]:
                        with raw_read.op():
                            await cur.execute(SELECT, (user_id,))
                            await cur.fetchone()
                await raw.commit()
        await raw.close()
        await conns.close()
    print(machine())
    for clock in (ours_read, raw_read, ours_ins, raw_ins):
        print(clock.timing.line())
    print(ratio_line(ours_read.timing, raw_read.timing, target=0.5))
    print(ratio_line(ours_ins.timing, raw_ins.timing, target=0.5))


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    uvloop.run(
        main(rounds=4 if args.quick else 10, per_round=250 if args.quick else 1000)
    )  # as the API's uvicorn workers run

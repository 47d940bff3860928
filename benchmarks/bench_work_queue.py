"""The work queue: claim → heartbeat → complete, ours against pgqueuer on one database.

Part 1 — throughput. `--workers` concurrent in-process workers per side, for the same wall
time, alternating sides twice. One cycle:

* ours: `WorkService.claim` (the fair claim: tenants, SKIP LOCKED, lease, attempt row),
  `WorkService.heartbeat`, `AiSessionService.complete` under the lease (fenced, ending the
  attempt), each its own transaction through the app's connection layer (SQLAlchemy pool,
  psycopg, the cache invalidation and SSE publish after each commit) — what the API does
  for a worker, without HTTP;
* pgqueuer (its `Queries` on one asyncpg connection per worker, as its QueueManager uses
  them): `dequeue` (batch 1), `update_heartbeat`, `log_jobs(successful)`.

Both queues are seeded with the same number of ready jobs (ours over 8 tenants).

Part 2 — claim latency as the table grows: the median of `--claims` single claims (each
rolled back, so the queue stays the same) with `--ready` ready sessions among 10k and
among 1M sessions (the rest finished, seeded with generate_series): target ≤ 1.5×.

    .venv/bin/python -m benchmarks.bench_work_queue [--quick] [--seconds 20] [--workers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import timedelta

import asyncpg
import psycopg
import uvloop
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.ports.repository import EntrypointExecutionParameter
from pgqueuer.types import QueueEntrypoint, QueueManagerId

from benchmarks.common import bench_redis_url, machine, parser, raw_dsn, scratch_database
from templator.ai_session.schemas import AiSessionComplete
from templator.ai_session.service import AiSessionService
from templator.api.deps import api_unit
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.kit.actor import WORKER_SCOPE, Actor
from templator.models import UserRole
from templator.work.schemas import ClaimRequest, HeartbeatRequest
from templator.work.service import WorkService

TENANTS = 8
ENTRYPOINT = QueueEntrypoint("bench")

_SEED_USERS = """
INSERT INTO users (id, email, role) SELECT 'benchuser' || lpad(g::text, 16, '0'),
    'bench' || g || '@example.com', 'USER' FROM generate_series(1, %(tenants)s) g
"""
_SEED_PROJECTS = """
INSERT INTO projects (id, name, user_id) SELECT 'benchproj' || lpad(g::text, 16, '0'), 'p',
    'benchuser' || lpad(g::text, 16, '0') FROM generate_series(1, %(tenants)s) g
"""
_SEED_SESSIONS = """
INSERT INTO ai_sessions (id, project_id, user_id, status, ready_at, finished_at)
SELECT 's' || lpad((%(offset)s + g)::text, 24, '0'),
       'benchproj' || lpad((1 + g %% %(tenants)s)::text, 16, '0'),
       'benchuser' || lpad((1 + g %% %(tenants)s)::text, 16, '0'),
       CASE WHEN %(ready)s THEN 'PENDING' ELSE 'COMPLETED' END::session_status,
       now() - make_interval(secs => g), CASE WHEN %(ready)s THEN NULL ELSE now() END
FROM generate_series(1, %(count)s) g
"""


def seed(dsn: str, *, ready: int, finished: int, offset: int = 0) -> None:
    """Tenants (once), `ready` claimable sessions and `finished` COMPLETED ones."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if offset == 0:
            conn.execute(_SEED_USERS, {"tenants": TENANTS})
            conn.execute(_SEED_PROJECTS, {"tenants": TENANTS})
        for count, is_ready, start in ((ready, True, offset), (finished, False, offset + ready)):
            if count:
                conn.execute(
                    _SEED_SESSIONS,
                    {"offset": start, "tenants": TENANTS, "ready": is_ready, "count": count},
                )
        conn.execute("VACUUM ANALYZE ai_sessions")


async def ours_worker(
    conns: Connections, actor: Actor, name: str, stop: float, done: list[int]
) -> None:
    claim = ClaimRequest(worker=name)
    while time.perf_counter() < stop:
        # Each call its own one-statement unit, made as the API makes them (`api_unit`).
        async with api_unit(conns, autocommit=True) as s:  # the claim (`StatementUow`)
            claims = await WorkService(s, conns.cache).claim(actor, claim)
        if not claims:
            return
        session_id, token = claims[0].session.id, claims[0].lease.token
        async with api_unit(conns, autocommit=True) as s:  # a heartbeat (`DbStatement`)
            service = WorkService(s, conns.cache)
            await service.heartbeat(actor, service.held(session_id, token), HeartbeatRequest())
        async with api_unit(conns, autocommit=True) as s:  # a completion (`DbStatement`)
            await AiSessionService(s, conns.cache).complete(
                actor, session_id, AiSessionComplete(quality_score=0.9), lease=token
            )
        done[0] += 1


async def pgqueuer_worker(dsn: str, stop: float, done: list[int]) -> None:
    conn = await asyncpg.connect(dsn)
    queries = Queries.from_asyncpg_connection(conn)
    manager = QueueManagerId(uuid.uuid4())
    entrypoints = {ENTRYPOINT: EntrypointExecutionParameter(concurrency_limit=0)}
    try:
        while time.perf_counter() < stop:
            jobs = await queries.dequeue(
                batch_size=1,
                entrypoints=entrypoints,
                queue_manager_id=manager,
                global_concurrency_limit=None,
                heartbeat_timeout=timedelta(seconds=60),
            )
            if not jobs:
                return
            await queries.update_heartbeat([jobs[0].id])
            await queries.log_jobs([(jobs[0], "successful", None)])
            done[0] += 1
    finally:
        await conn.close()


async def throughput(url: str, *, seconds: float, workers: int, jobs: int) -> dict[str, float]:
    dsn = raw_dsn(url)
    seed(dsn, ready=jobs, finished=0)
    conn = await asyncpg.connect(dsn)
    queries = Queries.from_asyncpg_connection(conn)
    await queries.install()
    for start in range(0, jobs, 10_000):
        n = min(10_000, jobs - start)
        await queries.enqueue([ENTRYPOINT] * n, [None] * n, [0] * n)
    # Its statistics too, as ai_sessions has after seeding: without them the dequeue's
    # plan scans, and pgqueuer ran 5x slower at 50,000 queued jobs (61-77 vs 412-443/s).
    await conn.execute("VACUUM ANALYZE pgqueuer")
    await conn.close()
    redis = bench_redis_url(12)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        redis_url=redis,
        db_pool_size=workers + 2,
        cache_namespace="bench-work",
    )
    conns = Connections(settings, urls=StoreUrls(url, redis, None), role=ProcessRole.BENCH)
    actor = Actor("benchworker", UserRole.ADMIN, frozenset({WORKER_SCOPE}))
    results: dict[str, float] = {}
    for side in ("pgqueuer", "ours", "pgqueuer", "ours"):
        done = [0]
        started = time.perf_counter()
        stop = started + seconds / 2
        if side == "ours":
            await asyncio.gather(
                *(ours_worker(conns, actor, f"w{i}", stop, done) for i in range(workers))
            )
        else:
            await asyncio.gather(*(pgqueuer_worker(dsn, stop, done) for _ in range(workers)))
        results[side] = results.get(side, 0) + done[0] / (time.perf_counter() - started) / 2
    await conns.close()
    return results


def claim_latency(dsn: str, *, claims: int) -> float:
    """Median ms of one claim statement (the service's SQL), rolled back each time."""
    from templator.work.repository import _claim_statement

    statement = _claim_statement(1, 1)  # as WorkRepository.claim sends it
    params = {"worker": "lat", "lease": 60}
    samples = []
    with psycopg.connect(dsn) as conn:
        for _ in range(claims):
            started = time.perf_counter()
            conn.execute(statement, params).fetchall()
            samples.append(time.perf_counter() - started)
            conn.rollback()
    return statistics.median(samples) * 1000


def growth(*, ready: int, claims: int, big: int) -> tuple[float, float]:
    results = []
    for total in (10_000, big):
        with scratch_database() as url:
            dsn = raw_dsn(url)
            started = time.perf_counter()
            seed(dsn, ready=ready, finished=total - ready)
            print(
                f"  seeded {total:,} sessions ({ready:,} ready) in {time.perf_counter() - started:.0f}s"
            )
            results.append(claim_latency(dsn, claims=claims))
    return results[0], results[1]


async def main(args: argparse.Namespace) -> None:
    seconds = 6.0 if args.quick else args.seconds
    print(machine())
    with scratch_database() as url:
        results = await throughput(url, seconds=seconds, workers=args.workers, jobs=args.jobs)
    for side in ("ours", "pgqueuer"):
        print(
            f"{side:>9}: {results[side]:8.1f} cycles/s (claim → heartbeat → complete, "
            f"{args.workers} concurrent workers)"
        )
    ratio = results["ours"] / results["pgqueuer"]
    verdict = "OK" if ratio >= 1.0 else "BELOW TARGET"
    print(f"ratio ours/pgqueuer: {ratio:.2f}x (target >= 1.0x) {verdict}")
    if args.skip_growth:
        return
    big = 100_000 if args.quick else 1_000_000
    small_ms, big_ms = growth(ready=args.ready, claims=args.claims, big=big)
    growth_ratio = big_ms / small_ms
    verdict = "OK" if growth_ratio <= 1.5 else "ABOVE TARGET"
    print(
        f"claim latency p50: {small_ms:.2f} ms at 10,000 sessions, {big_ms:.2f} ms at {big:,} "
        f"({args.ready:,} ready): {growth_ratio:.2f}x (target <= 1.5x) {verdict}"
    )


if __name__ == "__main__":
    p = parser(__doc__ or "")
    p.add_argument("--seconds", type=float, default=20.0, help="measured time per side")
    p.add_argument("--workers", type=int, default=8, help="concurrent workers per side")
    p.add_argument("--jobs", type=int, default=50_000, help="ready jobs seeded per side")
    p.add_argument("--ready", type=int, default=1_000, help="ready sessions in part 2")
    p.add_argument("--claims", type=int, default=300, help="claims measured in part 2")
    p.add_argument("--skip-growth", action="store_true", help="part 1 only")
    uvloop.run(main(p.parse_args()))

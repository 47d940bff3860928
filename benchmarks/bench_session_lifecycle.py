"""Full AI session lifecycle: our services vs the same statements on raw psycopg.

One lifecycle = create session, 5 phase updates with ~10 KB of JSON each, 20 log lines,
complete, create a template from the result — each step its own transaction, as a
worker would commit as it goes. Both sides run `--workers` concurrent tasks for the
same wall time on the seeded dataset. Targets (issue #4): >= 500,000 sessions/hour
and >= 0.5x raw. The template step uses TemplateService.create_from_session (the
templates service is ready); the raw side inserts the same two rows.

By default a scratch database is created, migrated, seeded and dropped. With
`--database-url` (default: env DATABASE_URL) the run uses that database, refused unless
its name starts with `bench_` or `--yes` is given; it adds a bench user and removes it
(with everything of theirs, by cascade) at the end.

    .venv/bin/python -m benchmarks.bench_session_lifecycle [--quick] [--no-pre-ping]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
import uvloop
from sqlalchemy.engine import make_url

from benchmarks.common import bench_redis_url, machine, parser, raw_dsn, seeded_database
from templator.ai_session.schemas import AiSessionComplete, AiSessionCreate, PhaseUpdate
from templator.ai_session.service import AiSessionService
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.kit.actor import Actor
from templator.kit.ids import new_id, new_ids
from templator.kit.uow import unit_of_work
from templator.models import SessionPhase, UserRole
from templator.processing_log.schemas import LogLine
from templator.processing_log.service import LogService
from templator.template.schemas import TemplateFromSession
from templator.template.service import TemplateService

PHASES = list(SessionPhase)
SCRATCH_PREFIXES = ("bench_", "scratch_")


def add_database_options(p: argparse.ArgumentParser) -> None:
    """--database-url and --yes, shared by this folder's session and log benchmarks."""
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or None,
        help="database to run against (default: env DATABASE_URL; unset = a scratch "
        "database created, seeded and dropped)",
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="allow a database whose name does not start with bench_ (rows are added "
        "under a bench user and removed at the end)",
    )


@contextmanager
def bench_database(url: str | None, *, yes: bool, quick: bool) -> Iterator[str]:
    """The given database (guarded), else a seeded scratch one; yields a SQLAlchemy URL."""
    if url is None:
        with seeded_database(quick=quick) as scratch:
            yield scratch
        return
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = make_url(sa_url).database or ""
    if not name.startswith(SCRATCH_PREFIXES) and not yes:
        raise SystemExit(
            f"refusing to benchmark database {name!r}: it is not a scratch database "
            f"(name starting with {' or '.join(SCRATCH_PREFIXES)}). Pass --yes to run "
            "against it anyway, or unset --database-url/DATABASE_URL to use a fresh one."
        )
    yield sa_url


@contextmanager
def bench_owner(dsn: str, *, with_session: bool = False) -> Iterator[tuple[str, str, str]]:
    """A user, a project (and an AI session) of the benchmark's own; deleted afterwards."""
    user_id, project_id, session_id = new_ids(3)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, f"{user_id}@bench.invalid")
        )
        conn.execute(
            "INSERT INTO projects (id, name, user_id) VALUES (%s, 'bench', %s)",
            (project_id, user_id),
        )
        if with_session:
            conn.execute(
                "INSERT INTO ai_sessions (id, project_id, user_id) VALUES (%s, %s, %s)",
                (session_id, project_id, user_id),
            )
    try:
        yield user_id, project_id, session_id
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM users WHERE id = %s", (user_id,))


def payload(phase: SessionPhase) -> dict[str, Any]:
    """About 10 KB of JSON."""
    items = [
        {
            "id": f"{phase.value}-{i}",
            "kind": "section",
            "text": "lorem ipsum " * 6,
            "score": i / 100,
        }
        for i in range(95)
    ]
    if phase is SessionPhase.GENERATION:
        return {
            "name": "Bench module",
            "html": "<section>{{ module.title }}</section>" + "<p>x</p>" * 800,
            "hubspot_config": {
                "meta": {"label": "Bench", "content_types": ["ANY"]},
                "fields": [{"name": "title", "label": "T", "type": "text"}],
            },
        }
    return {"items": items}


PAYLOADS = {phase: payload(phase) for phase in PHASES}
LINES = [
    LogLine(phase="generation", message=f"step {i} done", data={"i": i} if i % 4 == 0 else None)
    for i in range(20)
]


ONE_STATEMENT_UNITS = [True]
"""Whether the phases and the completion run as the API runs them (one-statement units,
`api/deps.DbStatement`: no BEGIN/COMMIT) or in transactions (`--units transactions`)."""


async def ours_lifecycle(conns: Connections, actor: Actor, project_id: str) -> None:
    """One lifecycle through the services, each step its own unit of work on the driver
    pool (the one-statement steps on the statement pool), as the API's endpoints run them."""
    driver = conns.driver_pool
    one = ONE_STATEMENT_UNITS[0]
    statements = conns.statement_pool if one else None  # the API's: api/deps._unit
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=driver) as s:
        session_id = (
            await AiSessionService(s, conns.cache).create(
                actor, AiSessionCreate(project_id=project_id)
            )
        ).id
        await AiSessionService(s, conns.cache).start(actor, session_id)
    for i, phase in enumerate(PHASES, start=1):
        async with unit_of_work(
            conns.sessionmaker, conns.cache, driver=driver, autocommit=one, statements=statements
        ) as s:
            await AiSessionService(s, conns.cache).record_phase(
                actor,
                session_id,
                PhaseUpdate(phase=phase, payload=PAYLOADS[phase], progress=i / 5 * 0.95),
            )
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=driver) as s:
        await LogService(s, conns.cache).append_many(actor, session_id, LINES)
    async with unit_of_work(
        conns.sessionmaker, conns.cache, driver=driver, autocommit=one, statements=statements
    ) as s:
        await AiSessionService(s, conns.cache).complete(
            actor, session_id, AiSessionComplete(quality_score=0.9)
        )
    async with unit_of_work(conns.sessionmaker, conns.cache, driver=driver) as s:
        await TemplateService(s, conns.cache).create_from_session(
            actor, TemplateFromSession(session_id=session_id)
        )


async def ours_worker(
    conns: Connections, actor: Actor, project_id: str, stop: float, done: list[int]
) -> None:
    while time.perf_counter() < stop:
        await ours_lifecycle(conns, actor, project_id)
        done[0] += 1


PHASE_SQL = {
    phase: f"UPDATE ai_sessions SET {col} = %s::jsonb, phase = %s, progress = %s, status = 'PROCESSING', started_at = COALESCE(started_at, now()) WHERE id = %s"
    for phase, col in zip(
        PHASES,
        ["input_data", "sections", "ai_analysis", "suggestions", "final_result"],
        strict=True,
    )
}


async def raw_lifecycle(conn: psycopg.AsyncConnection[Any], user_id: str, project_id: str) -> None:
    """The same lifecycle as the same statements on one raw psycopg connection."""
    session_id = new_id()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO ai_sessions (id, project_id, user_id) VALUES (%s, %s, %s)",
            (session_id, project_id, user_id),
        )
    for i, phase in enumerate(PHASES, start=1):
        async with conn.transaction():
            await conn.execute(
                PHASE_SQL[phase],
                (
                    orjson.dumps(PAYLOADS[phase]).decode(),
                    phase.value,
                    i / 5 * 0.95,
                    session_id,
                ),
            )
    async with (
        conn.transaction(),
        conn.cursor().copy(
            "COPY processing_logs (id, session_id, level, phase, message, data) FROM STDIN"
        ) as copy,
    ):
        for log_id, line in zip(new_ids(len(LINES)), LINES, strict=True):
            await copy.write_row(
                (
                    log_id,
                    session_id,
                    "INFO",
                    line.phase,
                    line.message,
                    orjson.dumps(line.data).decode() if line.data else None,
                )
            )
    async with conn.transaction():
        await conn.execute(
            "UPDATE ai_sessions SET status = 'COMPLETED', progress = 1, finished_at = now(), quality_score = 0.9, "
            "processing_time = (extract(epoch FROM now() - started_at) * 1000)::int WHERE id = %s",
            (session_id,),
        )
    final = PAYLOADS[SessionPhase.GENERATION]
    template_id = new_id()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO templates (id, name, project_id, session_id, html_content, hubspot_config) VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
            (
                template_id,
                final["name"],
                project_id,
                session_id,
                final["html"],
                orjson.dumps(final["hubspot_config"]).decode(),
            ),
        )
        await conn.execute(
            "INSERT INTO template_versions (id, template_id, version, changes, content) VALUES (%s, %s, '1.0.0', '[]', %s::jsonb)",
            (new_id(), template_id, orjson.dumps(final).decode()),
        )


async def raw_worker(dsn: str, user_id: str, project_id: str, stop: float, done: list[int]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        while time.perf_counter() < stop:
            await raw_lifecycle(conn, user_id, project_id)
            done[0] += 1


async def main(args: argparse.Namespace) -> None:
    seconds, workers = (6.0 if args.quick else args.seconds), args.workers
    ONE_STATEMENT_UNITS[0] = args.units == "api"
    with (
        bench_database(args.database_url, yes=args.yes, quick=args.quick) as url,
        bench_owner(raw_dsn(url)) as (user_id, project_id, _),
    ):
        dsn = raw_dsn(url)
        settings = Settings(
            _env_file=None,
            database_url=url,
            redis_url=bench_redis_url(13),
            db_pool_size=workers + 2,
            db_pool_pre_ping=args.pre_ping,
            cache_namespace="bench",
        )
        conns = Connections(
            settings, urls=StoreUrls(url, bench_redis_url(13), None), role=ProcessRole.BENCH
        )
        actor = Actor(user_id, UserRole.USER)
        results: dict[str, float] = {}
        for side in ("raw", "ours", "raw", "ours"):
            done = [0]
            stop = time.perf_counter() + seconds / 2
            started = time.perf_counter()
            if side == "ours":
                await asyncio.gather(
                    *(ours_worker(conns, actor, project_id, stop, done) for _ in range(workers))
                )
            else:
                await asyncio.gather(
                    *(raw_worker(dsn, user_id, project_id, stop, done) for _ in range(workers))
                )
            results[side] = results.get(side, 0) + done[0] / (time.perf_counter() - started) / 2
        await conns.close()
    print(machine())
    print(f"pool pre-ping: {'on' if args.pre_ping else 'off'}; units: {args.units}")
    for side in ("ours", "raw"):
        print(
            f"{side:>5}: {results[side]:8.1f} sessions/s = {results[side] * 3600:>12,.0f} sessions/hour ({workers} concurrent workers)"
        )
    ratio = results["ours"] / results["raw"]
    print(
        f"ratio ours/raw: {ratio:.2f}x (target >= 0.5x); ours vs 500,000/hour: {results['ours'] * 3600 / 500_000:.2f}x"
    )


if __name__ == "__main__":
    p = parser(__doc__ or "")
    p.add_argument("--seconds", type=float, default=20.0, help="measured time per side")
    p.add_argument("--workers", type=int, default=8, help="concurrent workers per side")
    p.add_argument(
        "--pre-ping",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pool pre-ping on checkout, as DB_POOL_PRE_PING (default on, as in production)",
    )
    p.add_argument(
        "--units",
        choices=("api", "transactions"),
        default="api",
        help="api: phases and the completion in one-statement units, as the API runs them "
        "(no BEGIN/COMMIT); transactions: every step in a transaction, as the raw side",
    )
    add_database_options(p)
    # uvloop on both sides, as the API's uvicorn workers run.
    uvloop.run(main(p.parse_args()))

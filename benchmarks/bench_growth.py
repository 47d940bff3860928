"""Growth: the hot reads, the session lifecycle and search on a small and a large dataset.

The same operations are measured twice in one run, on a database of the benchmark's own
(dropped afterwards): first at 10k AI sessions and 50k templates (seeded with the
project's COPY loader), then after growing it with set-based SQL (INSERT … SELECT over
generate_series) to 1M sessions and 1M templates, VACUUM ANALYZE'd. Each operation runs
our code and a raw-driver baseline doing the same work, one request at a time:

* template read with Redis down — ours: `api.fastpath.uncached_read` on the `ReadPool`
  (`load_with_token`, `verify`, the read check, JSON form: the fast path's database
  answer); raw: the same statement on
  one asyncpg connection;
* session read — ours: `AiSessionService.get` in a read session; raw: psycopg SELECT;
* session lifecycle — ours: create, 5 phases, 20 log lines, complete, template from the
  session through the services, one transaction each; raw: the same statements;
* search — ours: `TemplateService.search` as an admin (every template) and as a user (their
  own projects); raw: the same SQL on psycopg.

Each operation runs in two rounds over the plan (spread over the run's time). Prints
per-request p50/p95/mean at both sizes, the large/small ratio of p50 and mean (the
verdict on p50, target ≤ 1.5×: the mean follows every stall of a shared machine) and
ours/raw at each size.

    .venv/bin/python -m benchmarks.bench_growth [--quick]
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import psycopg
import uvloop

from benchmarks.bench_session_lifecycle import ours_lifecycle, raw_lifecycle
from benchmarks.bench_templates import QUERIES, raw_search
from benchmarks.common import (
    Timing,
    admin_with_token,
    bench_redis_url,
    machine,
    parser,
    raw_dsn,
    scratch_database,
)
from templator.ai_session.service import AiSessionService
from templator.api.fastpath import uncached_read
from templator.api.hot_read import READ_WITH_TOKEN as _READ_WITH_TOKEN
from templator.auth.service import parse
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.seed import SeedPlan, seed_database
from templator.kit.actor import Actor
from templator.kit.uow import read_session
from templator.models import UserRole
from templator.template.service import TemplateService

REDIS_URL = bench_redis_url(15)
TARGET = 1.5


@dataclass(frozen=True)
class Sizes:
    sessions: int
    templates: int


FULL = (Sizes(10_000, 50_000), Sizes(1_000_000, 1_000_000))
QUICK = (Sizes(2_000, 5_000), Sizes(20_000, 50_000))

# Growth adds users with projects, sessions and templates like the ones already there
# (copy g of each row, its id mapped by MAP and its references by the same MAP), so each
# user keeps the data of one user and the platform as a whole grows.
MAP = "'g' || left(md5({col} || ':' || g), 24)"
GROW = [
    f"""INSERT INTO users (id, email, name, role, created_at, updated_at)
    SELECT {MAP.format(col="id")}, 'g' || g || '-' || email, name, role, created_at, updated_at
    FROM users, generate_series(1, %(users)s) g""",
    f"""INSERT INTO projects (id, name, description, user_id, created_at, updated_at)
    SELECT {MAP.format(col="id")}, name, description, {MAP.format(col="user_id")},
        created_at, updated_at
    FROM projects, generate_series(1, %(users)s) g""",
    f"""INSERT INTO ai_sessions (id, project_id, user_id, status, phase, progress, input_data,
        sections, ai_analysis, suggestions, final_result, processing_time, error_log,
        quality_score, started_at, finished_at, created_at, updated_at)
    SELECT {MAP.format(col="id")}, {MAP.format(col="project_id")}, {MAP.format(col="user_id")},
        status, phase, progress, input_data, sections, ai_analysis, suggestions,
        final_result, processing_time, error_log, quality_score, started_at, finished_at,
        created_at, updated_at
    FROM ai_sessions, generate_series(1, %(sessions)s) g""",
    f"""INSERT INTO templates (id, name, description, project_id, session_id, html_content,
        css_content, js_content, hubspot_config, version, status, quality_score, tags,
        created_at, updated_at)
    SELECT {MAP.format(col="id")}, name, description, {MAP.format(col="project_id")},
        CASE WHEN session_id IS NOT NULL THEN {MAP.format(col="session_id")} END,
        html_content, css_content, js_content, hubspot_config, version, status,
        quality_score, tags, created_at, updated_at
    FROM templates, generate_series(1, %(templates)s) g""",
]


async def sample_ids(pg: psycopg.AsyncConnection[Any], table: str, n: int = 5_000) -> list[str]:
    """About `n` ids from blocks spread over the whole table (TABLESAMPLE SYSTEM reads
    only the sampled blocks; a LIMIT would favour the first ones)."""
    row = await (await pg.execute(f"SELECT count(*) FROM {table}")).fetchone()
    assert row is not None
    percent = min(100.0, n * 100 / max(1, row[0]))
    rows = await (
        await pg.execute(f"SELECT id FROM {table} TABLESAMPLE SYSTEM (%s)", (percent,))
    ).fetchall()
    return [r[0] for r in rows]


async def measure(fn: Callable[[int], Awaitable[None]], n: int, warm: int) -> list[float]:
    for i in range(warm):
        await fn(i)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await fn(warm + i)
        samples.append(time.perf_counter() - started)
    return samples


def stats(samples: list[float]) -> tuple[float, float, float]:
    t = Timing("", samples)
    return t.pct(0.5), t.pct(0.95), sum(samples) / len(samples) * 1000


async def run_size(
    conns: Connections,
    url: str,
    *,
    token: str,
    user: Actor,
    scoped: Actor,
    reads: int,
    lifecycles: int,
) -> dict[str, list[float]]:
    """Every operation, ours and raw, at the database's current size."""
    dsn = raw_dsn(url)
    prefix, secret = parse(token)
    admin = Actor(user.id, UserRole.ADMIN)
    pg = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    pg_tx = await psycopg.AsyncConnection.connect(dsn)
    apg = await asyncpg.connect(dsn)
    rng = random.Random(1)
    template_ids = await sample_ids(pg, "templates")
    session_ids = await sample_ids(pg, "ai_sessions")
    tids = [rng.choice(template_ids) for _ in range(reads + 500)]
    sids = [rng.choice(session_ids) for _ in range(reads + 500)]
    pool = conns.read_pool
    assert pool is not None

    async def template_ours(i: int) -> None:
        assert await uncached_read(pool, prefix, secret, tids[i]) is not None

    async def template_raw(i: int) -> None:
        assert await apg.fetchrow(_READ_WITH_TOKEN, prefix, tids[i]) is not None

    async def session_ours(i: int) -> None:
        async with read_session(conns.read_sessionmaker) as s:
            await AiSessionService(s, conns.cache).get(admin, sids[i])

    async def session_raw(i: int) -> None:
        cur = await pg.execute("SELECT * FROM ai_sessions WHERE id = %s", (sids[i],))
        assert await cur.fetchone() is not None

    async def lifecycle_ours(i: int) -> None:
        await ours_lifecycle(conns, user, project_of_user)

    async def lifecycle_raw(i: int) -> None:
        await raw_lifecycle(pg_tx, user.id, project_of_user)

    def search_ours(actor: Actor) -> Callable[[int], Awaitable[None]]:
        async def go(i: int) -> None:
            async with conns.sessionmaker() as s:
                await TemplateService(s, conns.cache).search(actor, QUERIES[i % len(QUERIES)])

        return go

    def search_raw(actor: Actor) -> Callable[[int], Awaitable[None]]:
        async def go(i: int) -> None:
            await raw_search(pg, QUERIES[i % len(QUERIES)], actor)

        return go

    row = await (
        await pg.execute("SELECT id FROM projects WHERE user_id = %s", (user.id,))
    ).fetchone()
    assert row is not None
    project_of_user: str = row[0]
    searches = max(60, reads // 20)
    plan: list[tuple[str, Callable[[int], Awaitable[None]], int, int]] = [
        ("template read (Redis down): ours", template_ours, reads, 300),
        ("template read (Redis down): raw asyncpg", template_raw, reads, 300),
        ("session read: ours", session_ours, reads, 300),
        ("session read: raw psycopg", session_raw, reads, 300),
        ("session lifecycle: ours", lifecycle_ours, lifecycles, 10),
        ("session lifecycle: raw psycopg", lifecycle_raw, lifecycles, 10),
        ("search, admin: ours", search_ours(admin), searches, len(QUERIES)),
        ("search, admin: raw psycopg", search_raw(admin), searches, len(QUERIES)),
        ("search, a user's own: ours", search_ours(scoped), searches, len(QUERIES)),
        ("search, a user's own: raw psycopg", search_raw(scoped), searches, len(QUERIES)),
    ]
    out: dict[str, list[float]] = {name: [] for name, *_ in plan}
    # Two rounds over the whole plan, so each operation is spread over the run's time and
    # a burst of other work on the shared machine does not land on one side only.
    for _ in range(2):
        for name, fn, n, warm in plan:
            out[name] += await measure(fn, n // 2, warm)
    for name in out:
        p50, p95, mean = stats(out[name])
        print(f"  {name:<42} p50 {p50:8.3f} ms  p95 {p95:8.3f} ms  mean {mean:8.3f} ms")
    for name, _, n, _ in plan:
        if name.startswith("search"):  # each round runs QUERIES in order from the first
            per: list[list[float]] = [[] for _ in QUERIES]
            for k, sample in enumerate(out[name]):
                per[(k % (n // 2)) % len(QUERIES)].append(sample)
            medians = ", ".join(f"{Timing('', p).pct(0.5):.1f}" for p in per)
            print(f"    {name}: p50 per query (ms), in QUERIES' order: {medians}")
    await apg.close()
    await pg.close()
    await pg_tx.close()
    return out


def grow(url: str, sizes: Sizes) -> float:
    """Grow the rows to about `sizes` with INSERT … SELECT; seconds taken (with ANALYZE)."""
    started = time.perf_counter()
    with psycopg.connect(raw_dsn(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ai_sessions), (SELECT count(*) FROM templates)"
        ).fetchone()
        assert row is not None
        copies = {
            "sessions": max(0, round(sizes.sessions / row[0]) - 1),
            "templates": max(0, round(sizes.templates / row[1]) - 1),
        }
        copies["users"] = max(copies.values())
        for statement in GROW:
            conn.execute(statement, copies)
        for table in ("users", "projects", "ai_sessions", "templates"):
            conn.execute(f"VACUUM ANALYZE {table}")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM ai_sessions), "
            "(SELECT count(*) FROM templates), pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()
    assert counts is not None
    print(
        f"grown to {counts[0]:,} users, {counts[1]:,} sessions and {counts[2]:,} templates "
        f"({counts[3]})"
    )
    return time.perf_counter() - started


async def main(quick: bool) -> None:
    small, large = QUICK if quick else FULL
    reads, lifecycles = (1_000, 20) if quick else (5_000, 60)
    print(machine())
    with scratch_database() as url:
        started = time.perf_counter()
        seed_database(
            url,
            SeedPlan(
                users=1000 if not quick else 100,
                sessions=small.sessions,
                templates=small.templates,
                logs_per_session=5,
                random_seed=1,
            ),
        )
        print(f"seeded {small} in {time.perf_counter() - started:.0f} s")
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=url, redis_url=REDIS_URL, cache_namespace="growth"
        )
        conns = Connections(settings, urls=StoreUrls(url, REDIS_URL, None), role=ProcessRole.BENCH)
        await conns.open_read_pool()
        admin_id, token = await admin_with_token(conns, name="growth")
        user = Actor(admin_id, UserRole.ADMIN)
        with psycopg.connect(raw_dsn(url), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO projects (id, name, user_id) VALUES (%s, 'growth', %s)",
                ("g" + admin_id[1:], admin_id),
            )
        with psycopg.connect(raw_dsn(url)) as conn:
            # The user whose own templates are searched, the same at both sizes: the
            # seeded user with the most templates (the copies get users of their own).
            busiest = conn.execute(
                "SELECT p.user_id FROM templates t JOIN projects p ON p.id = t.project_id "
                "GROUP BY p.user_id ORDER BY count(*) DESC, p.user_id LIMIT 1"
            ).fetchone()
        assert busiest is not None
        scoped = Actor(busiest[0], UserRole.USER)
        results = {}
        for label, sizes in (("small", small), ("large", large)):
            if label == "large":
                print(f"growing: {grow(url, sizes):.0f} s")
            print(f"{label}: {sizes.sessions:,} sessions, {sizes.templates:,} templates")
            results[label] = await run_size(
                conns,
                url,
                token=token,
                user=user,
                scoped=scoped,
                reads=reads,
                lifecycles=lifecycles,
            )
        await conns.close()
    print()
    print(f"{'operation':<42} {'p50 large/small':>16} {'mean large/small':>17}  verdict (p50)")
    names = list(results["small"])
    for name in names:
        s50, _, smean = stats(results["small"][name])
        l50, _, lmean = stats(results["large"][name])
        r50, rmean = l50 / s50, lmean / smean
        ok = "OK" if r50 <= TARGET else f"ABOVE {TARGET}x"
        print(f"{name:<42} {r50:>15.2f}x {rmean:>16.2f}x  {ok}")
    print()
    for ours, raw in zip(names[::2], names[1::2], strict=True):
        line = []
        for label in ("small", "large"):
            o, r = stats(results[label][ours])[0], stats(results[label][raw])[0]
            line.append(f"{label} {o / r:.2f}x")
        print(f"p50 ours/raw, {ours.split(':')[0]:<30} " + ", ".join(line))


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    uvloop.run(main(args.quick))

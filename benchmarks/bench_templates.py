"""Template search latency and the cached template read, beside their raw baselines.

Search: a mix of full-text, fuzzy, tag and status+text queries through
`search_templates` vs the same SQL on raw psycopg, over the seeded 50k templates
(target p95 <= 30 ms). Cache: `TemplateService.get_data` on a Zipf-skewed workload over
2,000 templates (target p95 <= 1 ms at the service level, hit ratio >= 90%), beside a
raw Redis GET of the same bytes and a raw psycopg primary-key SELECT.

    .venv/bin/python -m benchmarks.bench_templates [--quick]
"""

from __future__ import annotations

import random
from typing import Any

import psycopg
import uvloop
from redis.asyncio import Redis

from benchmarks.common import Clock, bench_redis_url, machine, parser, raw_dsn, seeded_database
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.kit.actor import Actor
from templator.kit.uow import read_session
from templator.models import TemplateStatus, UserRole
from templator.template.repository import search_statement, spelling_statement
from templator.template.schemas import TemplateQuery
from templator.template.service import TemplateService

ADMIN = Actor("a" * 25, UserRole.ADMIN)
QUERIES = [
    TemplateQuery(q="pricing table"),
    TemplateQuery(q="testimonal carousell"),
    TemplateQuery(q="hero banner", fuzzy=False),
    TemplateQuery(tags=["pricing", "hero"]),
    TemplateQuery(status=TemplateStatus.PUBLISHED, q="newsletter signup"),
    TemplateQuery(q="footer navigation", tags=["footer"]),
]


async def raw_search(
    conn: psycopg.AsyncConnection[Any], query: TemplateQuery, actor: Actor = ADMIN
) -> list[Any]:
    """The statements TemplateService.search sends for `actor`, on raw psycopg: the
    search; when its matches would not fill a page and it may go fuzzy, the spelling
    lookup and, with corrections, the corrected search; never prepared, as ours."""
    sql, params = search_statement(actor, query, offset=0)
    rows = await (await conn.execute(sql, params, prepare=False)).fetchall()
    if query.q and query.fuzzy and rows[0][0] <= query.limit:
        spelling, spelling_params = spelling_statement(query.q, actor)
        spelled = await (await conn.execute(spelling, spelling_params, prepare=False)).fetchall()
        if spelled:
            sql, params = search_statement(
                actor, query, offset=0, spelled=[(r[0], r[1]) for r in spelled]
            )
            rows = await (await conn.execute(sql, params, prepare=False)).fetchall()
    return rows


async def bench_search(conns: Connections, dsn: str, rounds: int) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        busiest = await (
            await conn.execute(
                "SELECT p.user_id FROM templates t JOIN projects p ON p.id = t.project_id "
                "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).fetchone()
        assert busiest is not None
        # ADMIN: every template, the vocabulary of all; a USER (the one with the most
        # templates): their own, spelled against their own vocabulary (issue #21).
        for actor in (ADMIN, Actor(busiest[0], UserRole.USER)):
            who = actor.role.value
            ours = Clock(f"TemplateService.search as {who}")
            raw = Clock(f"same SQL as {who}, raw psycopg")
            for _ in range(rounds):
                for query in QUERIES:
                    async with conns.sessionmaker() as session:
                        with ours.op():
                            await TemplateService(session, conns.cache).search(actor, query)
                    with raw.op():
                        await raw_search(conn, query, actor)
            print(ours.timing.line())
            print(raw.timing.line())
            print(
                f"search as {who} p95 {ours.timing.pct(0.95):.2f} ms (target <= 30 ms); "
                f"ratio of p95 raw/ours {raw.timing.pct(0.95) / ours.timing.pct(0.95):.2f}"
            )


async def bench_cache(conns: Connections, dsn: str, reads: int) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        ids = [
            r[0]
            for r in await (
                await conn.execute("SELECT id FROM templates ORDER BY id LIMIT 2000")
            ).fetchall()
        ]
        rng = random.Random(3)
        weights = [1 / (rank + 1) ** 1.1 for rank in range(len(ids))]
        workload = rng.choices(ids, weights, k=reads)
        await conns.cache.purge_namespace()
        start_hits, start_misses = conns.cache.stats.hits, conns.cache.stats.misses
        ours = Clock("TemplateService.get_data (cache-aside)")
        hit_samples: list[float] = []
        for template_id in workload:
            async with read_session(conns.sessionmaker) as session:
                hits_before = conns.cache.stats.hits
                with ours.op():
                    await TemplateService(session, conns.cache).get_data(ADMIN, template_id)
                if conns.cache.stats.hits > hits_before:
                    hit_samples.append(ours.timing.samples[-1])
        hits = conns.cache.stats.hits - start_hits
        misses = conns.cache.stats.misses - start_misses
        redis: Redis = conns.redis
        raw_redis, raw_pg = (
            Clock("raw Redis GET of the cached bytes"),
            Clock("raw psycopg SELECT by pk"),
        )
        for template_id in workload[:5000]:
            with raw_redis.op():
                await redis.get(conns.cache.key("template", template_id))
            with raw_pg.op():
                await (
                    await conn.execute("SELECT * FROM templates WHERE id = %s", (template_id,))
                ).fetchone()
    print(ours.timing.line())
    print(raw_redis.timing.line())
    print(raw_pg.timing.line())
    hit_samples.sort()
    p95_hits = hit_samples[int(0.95 * len(hit_samples))] * 1000 if hit_samples else 0.0
    print(
        f"hit ratio {hits / (hits + misses):.1%} (target >= 90%); service p95 {ours.timing.pct(0.95):.3f} ms overall, {p95_hits:.3f} ms on hits (target <= 1 ms)"
    )


async def main(quick: bool) -> None:
    with seeded_database(quick=quick) as url:
        settings = Settings(
            _env_file=None,
            database_url=url,
            redis_url=bench_redis_url(12),
            cache_namespace="bench-tpl",
        )  # type: ignore[call-arg]
        conns = Connections(
            settings, urls=StoreUrls(url, bench_redis_url(12), None), role=ProcessRole.BENCH
        )
        print(machine())
        await bench_search(conns, raw_dsn(url), rounds=10 if quick else 40)
        await bench_cache(conns, raw_dsn(url), reads=5_000 if quick else 20_000)
        await conns.close()


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    uvloop.run(main(args.quick))  # as the API's uvicorn workers run

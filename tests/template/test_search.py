"""Template search: ranked full-text and fuzzy matches, filters, and index-only plans."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.seed import SeedPlan, seed_database
from templator.kit.actor import Actor
from templator.migrations import runner
from templator.models import TemplateStatus, UserRole
from templator.template.repository import search_statement
from templator.template.schemas import TemplateCreate, TemplateQuery
from templator.template.service import TemplateService
from tests.support import plans, servers
from tests.support.factories import actor_of, hubspot_config, make_project, make_user

ADMIN = Actor("a" * 25, UserRole.ADMIN)


@pytest.fixture(scope="module")
def big_database() -> Iterator[str]:
    """A scratch database with 30,000 seeded templates, analysed."""
    name, url = servers.create_database("templator_search")
    runner.upgrade(url)
    seed_database(
        url, SeedPlan(users=60, sessions=3000, templates=30_000, logs_per_session=0, random_seed=7)
    )
    yield url
    servers.drop_database(name)


def _plan(url: str, actor: Actor, query: TemplateQuery) -> dict[str, Any]:
    sql, params = search_statement(actor, query, offset=0)
    return plans.explain(url, sql, params)


@pytest.mark.parametrize(
    "query",
    [
        TemplateQuery(q="pricing table"),
        TemplateQuery(q="pricng tabel", fuzzy=True),
        TemplateQuery(q="hero banner", fuzzy=False),
        TemplateQuery(tags=["pricing", "hero"]),
        TemplateQuery(status=TemplateStatus.PUBLISHED, q="carousel"),
    ],
    ids=["full-text", "fuzzy", "text-only", "tags", "status+text"],
)
def test_no_sequential_scan_on_templates(big_database: str, query: TemplateQuery) -> None:
    plan = _plan(big_database, ADMIN, query)
    scans = [(n["Node Type"], n.get("Relation Name")) for n in plans.nodes(plan)]
    assert ("Seq Scan", "templates") not in scans, json.dumps(plan, indent=1)[:3000]


def test_owner_filtered_search_uses_indexes_too(big_database: str) -> None:
    with psycopg.connect(big_database.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT user_id FROM projects LIMIT 1").fetchone()
    assert row is not None
    owner = Actor(row[0], UserRole.USER)
    for query in (TemplateQuery(q="pricing"), TemplateQuery(project_id="b" * 25)):
        scans = [
            (n["Node Type"], n.get("Relation Name"))
            for n in plans.nodes(_plan(big_database, owner, query))
        ]
        assert ("Seq Scan", "templates") not in scans


@pytest.fixture(scope="module")
async def big_connections(big_database: str, redis_url: str) -> AsyncIterator[Connections]:
    settings = Settings(_env_file=None, database_url=big_database, redis_url=redis_url)  # type: ignore[call-arg]
    conns = Connections(
        settings,
        urls=StoreUrls(big_database, redis_url, None),
        role=ProcessRole.TEST,
    )
    yield conns
    await conns.close()


async def test_search_results_are_ranked_and_paginated(big_connections: Connections) -> None:
    async with big_connections.sessionmaker() as session:
        service = TemplateService(session, big_connections.cache)
        first = await service.search(ADMIN, TemplateQuery(q="pricing", limit=10))
        assert len(first.items) == 10 and first.next_cursor
        ranks = [item.rank for item in first.items]
        assert ranks == sorted(ranks, reverse=True)
        second = await service.search(
            ADMIN, TemplateQuery(q="pricing", limit=10, cursor=first.next_cursor)
        )
        assert not {i.id for i in first.items} & {i.id for i in second.items}


async def test_text_fuzzy_tag_status_and_ownership(
    db_session: AsyncSession, connections: Connections
) -> None:
    owner = await make_user(db_session)
    project = await make_project(db_session, user=owner)
    service = TemplateService(db_session, connections.cache)
    actor = actor_of(owner)
    names = {
        "Testimonial carousel": ["social"],
        "Pricing comparison table": ["pricing"],
        "Newsletter signup form": ["form", "newsletter"],
    }
    for name, tags in names.items():
        await service.create(
            actor,
            TemplateCreate(
                project_id=project.id,
                name=name,
                description=f"{name} module",
                html_content="<p/>",
                hubspot_config=hubspot_config(),
                tags=tags,
            ),
        )
    stranger = actor_of(await make_user(db_session))

    async def names_for(who: Actor, query: TemplateQuery) -> list[str]:
        page = await service.search(who, query.model_copy(update={"project_id": project.id}))
        return [item.name for item in page.items]

    assert await names_for(actor, TemplateQuery(q="comparison")) == ["Pricing comparison table"]
    assert await names_for(actor, TemplateQuery(q="Testimonal carousell")) == [
        "Testimonial carousel"
    ]
    assert await names_for(actor, TemplateQuery(tags=["newsletter", "form"])) == [
        "Newsletter signup form"
    ]
    assert await names_for(actor, TemplateQuery(status=TemplateStatus.PUBLISHED)) == []
    assert await names_for(stranger, TemplateQuery(q="comparison")) == []


def test_invalid_search_input_names_the_field() -> None:
    with pytest.raises(ValueError, match="tag 'bad tag'"):
        TemplateQuery(tags=["Bad tag"])
    with pytest.raises(ValueError, match="limit"):
        TemplateQuery(limit=5000)

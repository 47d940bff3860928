"""Search's bounded work: a text search ranks the newest `window` matches only, and a
misspelt word is spelled against the vocabulary of words templates contain (search_words,
kept by triggers), not against every template's name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from templator.config import Settings
from templator.connections import Connections
from templator.dev.seed import SeedPlan, seed_database
from templator.kit.actor import Actor
from templator.migrations import runner
from templator.models import Project, TemplateStatus, UserRole
from templator.monitoring.maintenance import prune_search_words
from templator.template.repository import search_statement
from templator.template.schemas import TemplateCreate, TemplateQuery, TemplateUpdate
from templator.template.service import TemplateService
from tests.support import plans, servers
from tests.support.factories import actor_of, hubspot_config, make_project, make_user

ADMIN = Actor("a" * 25, UserRole.ADMIN)
WINDOW = 200


@pytest.fixture(scope="module")
def seeded() -> Iterator[str]:
    """A scratch database with 20,000 seeded templates (COPY, as `templator db seed`)."""
    name, url = servers.create_database("templator_bounds")
    runner.upgrade(url)
    seed_database(
        url, SeedPlan(users=40, sessions=2000, templates=20_000, logs_per_session=0, random_seed=3)
    )
    yield url.replace("+psycopg", "")
    servers.drop_database(name)


def test_only_the_window_is_ranked(seeded: str) -> None:
    query = TemplateQuery(q="pricing")
    with psycopg.connect(seeded) as conn:
        matches = conn.execute(
            "SELECT count(*) FROM templates "
            "WHERE search_vector @@ websearch_to_tsquery('english', 'pricing')"
        ).fetchone()
    assert matches is not None and matches[0] > 5 * WINDOW  # the window does cut
    sql, params = search_statement(ADMIN, query, offset=0, window=WINDOW)
    plan = plans.explain(seeded, sql, params, analyze=True)
    nodes = plans.nodes(plan)
    ranking = [n for n in nodes if "ts_rank_cd" in " ".join(n.get("Sort Key", []))]
    assert ranking, json.dumps(plan)[:3000]
    for sort in ranking:  # every sort by rank reads at most the window
        assert all(c["Actual Rows"] <= WINDOW for c in sort["Plans"]), json.dumps(sort)[:3000]
    # ...which a search over everything finds by walking the window's index, newest
    # first, without reading the table, and stops when the window is full.
    walks = [n for n in nodes if n.get("Index Name") == "idx_templates_newest_search"]
    assert walks and walks[0]["Node Type"] == "Index Only Scan", json.dumps(plan)[:3000]
    assert walks[0]["Scan Direction"] == "Backward" and walks[0]["Actual Rows"] == WINDOW


@pytest.mark.parametrize(
    "query",
    [
        TemplateQuery(q="pricing", status=TemplateStatus.PUBLISHED),
        TemplateQuery(q="pricing", tags=["pricing"]),
    ],
    ids=["text+status", "text+tag"],
)
def test_a_filtered_search_ranks_only_the_window_too(seeded: str, query: TemplateQuery) -> None:
    sql, params = search_statement(ADMIN, query, offset=0, window=WINDOW)
    plan = plans.explain(seeded, sql, params, analyze=True)
    nodes = plans.nodes(plan)
    assert max(n["Actual Rows"] for n in nodes if n["Node Type"].endswith("Scan")) > WINDOW
    ranking = [n for n in nodes if "ts_rank_cd" in " ".join(n.get("Sort Key", []))]
    assert ranking and all(c["Actual Rows"] <= WINDOW for r in ranking for c in r["Plans"])


def test_seeded_templates_fill_the_vocabulary(seeded: str) -> None:
    with psycopg.connect(seeded) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM search_words), "
            "(SELECT count(*) FROM ts_stat('SELECT search_vector FROM templates') "
            "WHERE word ~ '^[[:alpha:]]{3,}$')"
        ).fetchone()
    assert row is not None and row[0] == row[1] > 100


class Mine(NamedTuple):
    """A user's template service, the user as an actor, and a project of theirs."""

    service: TemplateService
    actor: Actor
    project: Project


@pytest.fixture
async def mine(db_session: AsyncSession, connections: Connections) -> Mine:
    owner = await make_user(db_session)
    project = await make_project(db_session, user=owner)
    return Mine(TemplateService(db_session, connections.cache), actor_of(owner), project)


async def _create(service: TemplateService, actor: Actor, project_id: str, **kw: Any) -> str:
    created = await service.create(
        actor,
        TemplateCreate(
            project_id=project_id, html_content="<p/>", hubspot_config=hubspot_config(), **kw
        ),
    )
    return created.id


async def test_the_newest_matches_are_ranked_by_relevance(
    db_session: AsyncSession, mine: Mine
) -> None:
    service, actor, project = mine
    # The oldest is the most relevant; the four newer ones match less well.
    best = await _create(
        service, actor, project.id, name="Pricing pricing", description="pricing pricing"
    )
    others = [
        await _create(service, actor, project.id, name=f"Card {i}", description="with pricing")
        for i in range(4)
    ]
    for age, template_id in enumerate(reversed([best, *others])):
        await db_session.execute(
            text(
                "UPDATE templates SET created_at = now() - make_interval(mins => :age) "
                "WHERE id = :id"
            ),
            {"age": age, "id": template_id},
        )
    query = TemplateQuery(q="pricing", project_id=project.id, fuzzy=False)

    whole = await service.search(ADMIN, query, window=10)
    assert whole.items[0].id == best
    assert len(whole.items) == 5

    newest = await service.search(ADMIN, query, window=3)
    assert {t.id for t in newest.items} == set(others[-3:])  # the three newest only
    ranks = [t.rank for t in newest.items]
    assert ranks == sorted(ranks, reverse=True)
    assert newest.next_cursor is None  # pages end with the window


async def test_a_misspelt_word_of_a_description_is_corrected(
    db_session: AsyncSession, mine: Mine
) -> None:
    service, actor, project = mine
    faq = await _create(
        service, actor, project.id, name="FAQ block", description="questions in an accordion"
    )

    async def ids(q: str, **kw: Any) -> list[str]:
        page = await service.search(actor, TemplateQuery(q=q, project_id=project.id, **kw))
        return [t.id for t in page.items]

    # The name shares nothing with the typo: only the words templates contain can help.
    assert await ids("acordion") == [faq]
    assert await ids("acordion", fuzzy=False) == []
    # A negated word is not corrected: correcting it would take hits away.
    assert await ids("faq -acordion") == [faq]
    # Only stop words: no lexeme, no hit, no error.
    assert await ids("the and") == []

    # Words a template gets by an edit join the vocabulary.
    await service.update(actor, faq, TemplateUpdate(name="Zebra stripes FAQ"))
    words = await db_session.execute(
        text("SELECT word FROM search_words WHERE word IN ('zebra', 'stripe')")
    )
    assert sorted(w for (w,) in words) == ["stripe", "zebra"]
    assert await ids("zebar stripes") == [faq]


def test_the_window_may_not_be_smaller_than_a_page() -> None:
    with pytest.raises(ValidationError, match="search_rank_window"):
        Settings(_env_file=None, search_rank_window=100)  # type: ignore[call-arg]
    assert Settings(_env_file=None).search_rank_window == WINDOW  # type: ignore[call-arg]


async def test_words_no_template_contains_are_pruned(seeded: str) -> None:
    engine = create_async_engine(seeded.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert await prune_search_words(engine, dry_run=True) == 0
        async with engine.begin() as conn:
            # A word whose templates were deleted (an erased user's client name, say).
            await conn.execute(text("INSERT INTO search_words VALUES ('qwertyuiopcorp')"))
            kept = (await conn.execute(text("SELECT count(*) FROM search_words"))).scalar_one()
        assert await prune_search_words(engine, dry_run=True) == 1
        assert await prune_search_words(engine) == 1
        async with engine.connect() as conn:
            left = await conn.execute(text("SELECT word FROM search_words WHERE word LIKE 'qwer%'"))
            assert left.all() == []
            count = (await conn.execute(text("SELECT count(*) FROM search_words"))).scalar_one()
        assert count == kept - 1
    finally:
        await engine.dispose()


async def test_search_is_planned_for_its_own_parameters(
    db_session: AsyncSession, mine: Mine
) -> None:
    """A prepared search gets a generic plan after five runs, the same for one user's few
    templates as for everyone's (at 1M templates: 50 ms instead of 4), so none is."""
    service, actor, project = mine
    await _create(service, actor, project.id, name="Pricing table", description="plans")
    for q in ["pricing"] * 8 + ["pricng"] * 8:  # the exact, spelling and spelled statements
        assert len((await service.search(actor, TemplateQuery(q=q))).items) == 1
    prepared = await db_session.execute(text("SELECT statement FROM pg_prepared_statements"))
    assert [s for (s,) in prepared if "search_words" in s or "search_vector" in s] == []


def test_templates_are_vacuumed_soon_enough_for_the_walk(seeded: str) -> None:
    """The window's walk starts at the newest rows: their pages must be marked all-visible
    soon, or every row it walks is fetched from the table too."""
    with psycopg.connect(seeded) as conn:
        row = conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'templates'").fetchone()
    assert row is not None
    options = dict(o.split("=") for o in row[0])
    assert float(options["autovacuum_vacuum_insert_scale_factor"]) <= 0.01
    assert float(options["autovacuum_vacuum_scale_factor"]) <= 0.05

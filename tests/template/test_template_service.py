"""Templates: versions on every change, diff, rollback, workflow and roles."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session.schemas import AiSessionComplete, AiSessionCreate, PhaseUpdate
from templator.ai_session.service import AiSessionService
from templator.audit.service import CLI
from templator.connections import Connections
from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.kit.pagination import PageParams
from templator.kit.uow import unit_of_work
from templator.models import SessionPhase, TemplateStatus, UserRole
from templator.template.errors import (
    AiSessionNotCompleted,
    InvalidTemplateTransition,
    NotAllowed,
    TemplateArchived,
    TemplateNotFound,
    TemplateVersionNotFound,
    VersionConflict,
)
from templator.template.schemas import TemplateCreate, TemplateFromSession, TemplateUpdate
from templator.template.service import TemplateService
from tests.support.factories import Committed, actor_of, hubspot_config, make_project, make_user


async def _setup(
    db_session: AsyncSession, connections: Connections
) -> tuple[TemplateService, Actor, str]:
    user = await make_user(db_session)
    project = await make_project(db_session, user=user)
    service = TemplateService(db_session, connections.cache)
    actor = actor_of(user)
    template = await service.create(
        actor,
        TemplateCreate(
            project_id=project.id,
            name="Hero banner",
            description="A big hero",
            html_content="<section>\n<h1>Hi</h1>\n</section>\n",
            hubspot_config=hubspot_config(),
            tags=["Hero", "landing"],
        ),
    )
    return service, actor, template.id


async def test_create_makes_version_one(db_session: AsyncSession, connections: Connections) -> None:
    service, actor, template_id = await _setup(db_session, connections)
    template = await service.get(actor, template_id)
    assert template.version == "1.0.0" and template.status is TemplateStatus.DRAFT
    assert template.tags == ["hero", "landing"]
    versions = await service.list_versions(actor, template_id, PageParams())
    assert [v.version for v in versions.items] == ["1.0.0"]
    assert versions.items[0].content["name"] == "Hero banner"


async def test_every_change_snapshots_a_version_with_its_change_log(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, template_id = await _setup(db_session, connections)
    await service.update(actor, template_id, TemplateUpdate(name="Hero v2"))
    await service.update(
        actor,
        template_id,
        TemplateUpdate(html_content="<section>\n<h1>Hello</h1>\n</section>\n", bump="minor"),
    )
    template = await service.update(actor, template_id, TemplateUpdate(tags=["hero"], bump="major"))
    assert template.version == "2.0.0"
    versions = await service.list_versions(actor, template_id, PageParams())
    assert [v.version for v in versions.items] == ["2.0.0", "1.1.0", "1.0.1", "1.0.0"]
    second = await service.get_version(actor, template_id, "1.0.1")
    assert second.changes["fields"] == [{"field": "name", "from": "Hero banner", "to": "Hero v2"}]
    assert second.content["name"] == "Hero v2"


async def test_an_edit_onto_an_existing_version_is_a_conflict_and_changes_nothing(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, template_id = await _setup(db_session, connections)
    await db_session.execute(
        text(
            "INSERT INTO template_versions (id, template_id, version, changes, content) "
            "VALUES (:id, :t, '1.0.1', '{}', '{}')"
        ),
        {"id": new_id(), "t": template_id},
    )
    with pytest.raises(VersionConflict):
        await service.update(actor, template_id, TemplateUpdate(name="Hero v2"))
    template = await service.repository.load(template_id)
    assert template is not None
    assert (template.template.name, template.template.version) == ("Hero banner", "1.0.0")


async def test_a_no_op_update_makes_no_version(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, template_id = await _setup(db_session, connections)
    template = await service.update(actor, template_id, TemplateUpdate(name="Hero banner"))
    assert template.version == "1.0.0"


async def test_diff_shows_text_and_config_changes(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, template_id = await _setup(db_session, connections)
    config = hubspot_config()
    config["fields"][0]["default"] = "Bye"
    await service.update(
        actor,
        template_id,
        TemplateUpdate(
            html_content="<section>\n<h1>Hello</h1>\n</section>\n", hubspot_config=config
        ),
    )
    diff = await service.diff(actor, template_id, "1.0.0", "1.0.1")
    by_field = {f.field: f for f in diff.fields}
    assert by_field["name"].changed is False
    assert "-<h1>Hi</h1>" in (by_field["html_content"].unified_diff or "")
    assert "+<h1>Hello</h1>" in (by_field["html_content"].unified_diff or "")
    assert by_field["hubspot_config"].changed_paths == ["fields[0].default"]


async def test_rollback_restores_content_as_a_new_version(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, actor, template_id = await _setup(db_session, connections)
    await service.update(actor, template_id, TemplateUpdate(name="Changed", description="Other"))
    rolled = await service.rollback(actor, template_id, "1.0.0")
    assert (
        rolled.version == "1.0.2"
        and rolled.name == "Hero banner"
        and rolled.description == "A big hero"
    )
    latest = await service.get_version(actor, template_id, "1.0.2")
    assert latest.changes["summary"] == "rollback to 1.0.0"
    with pytest.raises(TemplateVersionNotFound, match=r"no version '9\.9\.9'"):
        await service.rollback(actor, template_id, "9.9.9")


async def test_workflow_needs_reviewers_for_approval_and_publication(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, owner, template_id = await _setup(db_session, connections)
    expert = actor_of(await make_user(db_session, role=UserRole.EXPERT))
    await service.set_status(owner, template_id, TemplateStatus.REVIEW)
    with pytest.raises(NotAllowed, match="EXPERT or ADMIN"):
        await service.set_status(owner, template_id, TemplateStatus.APPROVED)
    await service.set_status(expert, template_id, TemplateStatus.APPROVED)
    with pytest.raises(
        InvalidTemplateTransition, match="it can move to ARCHIVED, DRAFT, PUBLISHED, not REVIEW"
    ):
        await service.set_status(owner, template_id, TemplateStatus.REVIEW)
    published = await service.set_status(expert, template_id, TemplateStatus.PUBLISHED)
    assert published.status is TemplateStatus.PUBLISHED
    await service.set_status(owner, template_id, TemplateStatus.ARCHIVED)
    with pytest.raises(TemplateArchived):
        await service.update(owner, template_id, TemplateUpdate(name="x"))


async def test_strangers_see_nothing_and_experts_only_what_is_under_review(
    db_session: AsyncSession, connections: Connections
) -> None:
    service, owner, template_id = await _setup(db_session, connections)
    stranger = actor_of(await make_user(db_session))
    expert = actor_of(await make_user(db_session, role=UserRole.EXPERT))
    for actor in (stranger, expert):
        with pytest.raises(TemplateNotFound):
            await service.get(actor, template_id)
    with pytest.raises(TemplateNotFound):
        await service.update(stranger, template_id, TemplateUpdate(name="mine now"))
    await service.set_status(owner, template_id, TemplateStatus.REVIEW)
    assert (await service.get(expert, template_id)).id == template_id
    with pytest.raises(NotAllowed):
        await service.update(expert, template_id, TemplateUpdate(name="expert edit"))


def test_bad_input_is_refused_naming_the_field_and_limit() -> None:
    with pytest.raises(ValidationError, match=r"tags\.0\n.*should match pattern"):
        TemplateUpdate(tags=["not ok!"])
    with pytest.raises(ValidationError, match=r"at most 20 (tags|items)"):
        TemplateUpdate(tags=[f"t{i}" for i in range(21)])
    with pytest.raises(ValidationError, match=r"fields > a b > name: field name 'a b'"):
        TemplateUpdate(
            hubspot_config={
                "meta": {"label": "x", "content_types": ["ANY"]},
                "fields": [{"name": "a b", "label": "A", "type": "color"}],
            }
        )
    with pytest.raises(ValidationError, match="extra"):
        TemplateUpdate.model_validate({"name": "x", "owner": "me"})


async def test_create_from_session_needs_a_completed_session(
    connections: Connections, committed: Committed
) -> None:
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        sessions = AiSessionService(session, connections.cache)
        ai = await sessions.create(
            committed.actor, AiSessionCreate(project_id=committed.project_id)
        )
        with pytest.raises(AiSessionNotCompleted, match="is PENDING"):
            await TemplateService(session, connections.cache).create_from_session(
                committed.actor, TemplateFromSession(session_id=ai.id)
            )
        await sessions.start(committed.actor, ai.id)
        await sessions.record_phase(
            committed.actor,
            ai.id,
            PhaseUpdate(
                phase=SessionPhase.GENERATION,
                payload={
                    "name": "Pricing",
                    "html": "<div>p</div>",
                    "css": ".p{}",
                    "hubspot_config": hubspot_config("Pricing"),
                },
                progress=0.9,
            ),
        )
        await sessions.complete(committed.actor, ai.id, AiSessionComplete(quality_score=0.8))
        template = await TemplateService(session, connections.cache).create_from_session(
            committed.actor, TemplateFromSession(session_id=ai.id, tags=["pricing"])
        )
    assert (
        template.session_id == ai.id
        and template.name == "Pricing"
        and template.css_content == ".p{}"
    )
    assert template.quality_score == 0.8


async def test_concurrent_edits_each_make_their_own_version(
    connections: Connections, committed: Committed
) -> None:
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        template = await TemplateService(session, connections.cache).create(
            committed.actor,
            TemplateCreate(
                project_id=committed.project_id,
                name="Race",
                html_content="<p>0</p>",
                hubspot_config=hubspot_config(),
            ),
        )

    async def edit(i: int) -> None:
        async with unit_of_work(connections.sessionmaker, connections.cache) as session:
            await TemplateService(session, connections.cache).update(
                committed.actor, template.id, TemplateUpdate(html_content=f"<p>{i}</p>")
            )

    await asyncio.gather(*(edit(i) for i in range(1, 7)))
    async with connections.sessionmaker() as session:
        service = TemplateService(session, connections.cache)
        versions = await service.list_versions(committed.actor, template.id, PageParams())
        final = await service.get(committed.actor, template.id)
    assert sorted(v.version for v in versions.items) == [f"1.0.{i}" for i in range(7)]
    assert final.version == "1.0.6"


async def test_cached_template_is_never_stale_after_a_committed_edit(
    connections: Connections, committed: Committed
) -> None:
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        template = await TemplateService(session, connections.cache).create(
            committed.actor,
            TemplateCreate(
                project_id=committed.project_id,
                name="Cached",
                html_content="<p>0</p>",
                hubspot_config=hubspot_config(),
            ),
        )

    async def read() -> str:
        async with connections.sessionmaker() as session:
            return (
                await TemplateService(session, connections.cache).get(committed.actor, template.id)
            ).name

    async def write(i: int) -> None:
        async with unit_of_work(connections.sessionmaker, connections.cache) as session:
            await TemplateService(session, connections.cache).update(
                committed.actor, template.id, TemplateUpdate(name=f"Cached {i}")
            )

    for i in range(1, 8):
        await asyncio.gather(write(i), *(read() for _ in range(6)))
        assert await read() == f"Cached {i}"


async def test_a_deleted_template_is_not_served_from_the_cache(
    connections: Connections, committed: Committed
) -> None:
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        template = await TemplateService(session, connections.cache).create(
            committed.actor,
            TemplateCreate(
                project_id=committed.project_id,
                name="Doomed",
                html_content="<p/>",
                hubspot_config=hubspot_config(),
            ),
        )
    async with connections.sessionmaker() as session:
        await TemplateService(session, connections.cache).get(committed.actor, template.id)

    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        await TemplateService(session, connections.cache).delete(
            committed.actor, template.id, origin=CLI
        )

    async with connections.sessionmaker() as session:
        with pytest.raises(TemplateNotFound):
            await TemplateService(session, connections.cache).get(committed.actor, template.id)

"""The database itself refuses bad data, and keeps timestamps and delete policies right."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from templator.models import AiSession, ProcessingLog, Project, Template, TemplateVersion
from tests.support.factories import make_project, make_session, make_template, make_user


async def test_duplicate_email_is_refused(db_session: AsyncSession) -> None:
    await make_user(db_session, email="ana@example.com")
    with pytest.raises(IntegrityError, match="uq_users_email"):
        await make_user(db_session, email="ana@example.com")


async def test_invalid_enum_value_is_refused(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    with pytest.raises(DBAPIError, match="user_role"):
        await db_session.execute(
            text("UPDATE users SET role = 'OWNER' WHERE id = :id"), {"id": user.id}
        )


@pytest.mark.parametrize("progress", [-0.01, 1.5])
async def test_progress_outside_unit_interval_is_refused(
    db_session: AsyncSession, progress: float
) -> None:
    with pytest.raises(IntegrityError, match="ck_ai_sessions_progress_range"):
        await make_session(db_session, progress=progress)


async def test_unknown_phase_is_refused(db_session: AsyncSession) -> None:
    with pytest.raises(IntegrityError, match="ck_ai_sessions_phase_known"):
        await make_session(db_session, phase="teleport")


async def test_duplicate_template_version_is_refused(db_session: AsyncSession) -> None:
    template = await make_template(db_session)
    db_session.add(
        TemplateVersion(template_id=template.id, version="1.0.0", changes=[], content={})
    )
    await db_session.flush()
    db_session.add(
        TemplateVersion(template_id=template.id, version="1.0.0", changes=[], content={})
    )
    with pytest.raises(IntegrityError, match="uq_template_versions_template_id_version"):
        await db_session.flush()


async def test_non_semver_version_is_refused(db_session: AsyncSession) -> None:
    with pytest.raises(IntegrityError, match="ck_templates_version_semver"):
        await make_template(db_session, version="v2")


@pytest.mark.parametrize("table", ["users", "projects", "ai_sessions", "templates"])
async def test_raw_sql_update_refreshes_updated_at(db_session: AsyncSession, table: str) -> None:
    template = await make_template(db_session)
    ai_session = await make_session(db_session)
    row_id = {
        "users": ai_session.user_id,
        "projects": template.project_id,
        "ai_sessions": ai_session.id,
        "templates": template.id,
    }[table]
    # Even a statement that tries to set an old value gets the current time from the trigger.
    stamp = await db_session.execute(
        text(
            f"UPDATE {table} SET updated_at = '2000-01-01' WHERE id = :id "
            "RETURNING updated_at, created_at, now() AS now"
        ),
        {"id": row_id},
    )
    updated_at, created_at, now = stamp.one()
    assert updated_at == now
    assert updated_at >= created_at


async def test_deleting_a_user_removes_everything_that_is_theirs(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    project = await make_project(db_session, user=user)
    ai_session = await make_session(db_session, project=project)
    template = await make_template(db_session, project=project, session_id=ai_session.id)
    db_session.add(ProcessingLog(session_id=ai_session.id, phase="upload", message="started"))
    db_session.add(
        TemplateVersion(template_id=template.id, version="1.0.0", changes=[], content={})
    )
    await db_session.flush()

    await db_session.execute(text("DELETE FROM users WHERE id = :id"), {"id": user.id})
    for model, column in (
        (Project, Project.user_id),
        (AiSession, AiSession.user_id),
        (Template, Template.project_id),
        (ProcessingLog, ProcessingLog.session_id),
        (TemplateVersion, TemplateVersion.template_id),
    ):
        key = {
            Project: user.id,
            AiSession: user.id,
            Template: project.id,
            ProcessingLog: ai_session.id,
            TemplateVersion: template.id,
        }[model]
        count = (await db_session.execute(select(func.count()).where(column == key))).scalar_one()
        assert count == 0, model.__tablename__


async def test_deleting_a_session_keeps_its_templates(db_session: AsyncSession) -> None:
    ai_session = await make_session(db_session)
    project_id = ai_session.project_id
    template = await make_template(
        db_session, session_id=ai_session.id, project=await db_session.get(Project, project_id)
    )
    await db_session.execute(text("DELETE FROM ai_sessions WHERE id = :id"), {"id": ai_session.id})
    session_id = (
        await db_session.execute(select(Template.session_id).where(Template.id == template.id))
    ).scalar_one()
    assert session_id is None


async def test_tags_are_a_text_array(db_session: AsyncSession) -> None:
    template = await make_template(db_session, tags=["hero", "landing"])
    found = (
        (await db_session.execute(select(Template.id).where(Template.tags.contains(["hero"]))))
        .scalars()
        .all()
    )
    assert template.id in found
    await db_session.execute(update(Template).where(Template.id == template.id).values(tags=[]))

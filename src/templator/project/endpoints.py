"""/api/v1/projects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from templator.api.deps import Conns, CurrentActor, DbSession, origin
from templator.api.pagination import PageOut, Paging, to_page_out
from templator.api.problems import responses_for
from templator.kit.ids import ID_PATTERN
from templator.kit.validation import IdPath
from templator.project import schemas
from templator.project.errors import ProjectNotFound
from templator.project.service import ProjectService

router = APIRouter(tags=["projects"])


@router.post("/projects", status_code=status.HTTP_201_CREATED)
async def create_project(
    data: schemas.ProjectCreate, actor: CurrentActor, conns: Conns, session: DbSession
) -> schemas.Project:
    """A new project owned by the caller."""
    return await ProjectService(session, conns.cache).create(actor, data)


@router.get(
    "/projects",
)
async def list_projects(
    actor: CurrentActor,
    conns: Conns,
    session: DbSession,
    paging: Paging,
    user_id: Annotated[str | None, Query(pattern=ID_PATTERN.pattern)] = None,
) -> PageOut[schemas.Project]:
    """The caller's projects (ADMIN: any user's, with `user_id`)."""
    page = await ProjectService(session, conns.cache).list_for(actor, user_id or actor.id, paging)
    return to_page_out(page)


@router.get("/projects/{project_id}", responses=responses_for(ProjectNotFound))
async def get_project(
    project_id: IdPath, actor: CurrentActor, conns: Conns, session: DbSession
) -> schemas.Project:
    """One project."""
    return await ProjectService(session, conns.cache).get(actor, project_id)


@router.patch("/projects/{project_id}", responses=responses_for(ProjectNotFound))
async def update_project(
    project_id: IdPath,
    data: schemas.ProjectUpdate,
    actor: CurrentActor,
    conns: Conns,
    session: DbSession,
) -> schemas.Project:
    """Rename or re-describe a project."""
    return await ProjectService(session, conns.cache).update(actor, project_id, data)


@router.delete(
    "/projects/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses_for(ProjectNotFound),
)
async def delete_project(
    project_id: IdPath, actor: CurrentActor, conns: Conns, session: DbSession, request: Request
) -> None:
    """Delete a project with its sessions, templates, logs and stored objects (audited)."""
    await ProjectService(session, conns.cache, conns.store).delete(
        actor, project_id, origin=origin(request, actor)
    )

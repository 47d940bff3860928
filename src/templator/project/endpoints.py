"""/api/v1/projects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from templator.api.deps import Conns, CurrentActor, DbSession, origin
from templator.api.pagination import PageOut, Paging, to_page_out
from templator.api.problems import responses_for
from templator.kit.ids import ID_PATTERN
from templator.kit.validation import IdPath
from templator.project import schemas
from templator.project.errors import ProjectNotFound
from templator.project.service import ProjectService

router = APIRouter(tags=["projects"])


async def _projects(session: DbSession, conns: Conns) -> ProjectService:
    """The ProjectService of this request's unit of work."""
    return ProjectService(session, conns.cache, conns.store)


Projects = Annotated[ProjectService, Depends(_projects)]
"""ProjectService, built at the edge for each request (on its DbSession, committed by it)."""


@router.post("/projects", status_code=status.HTTP_201_CREATED)
async def create_project(
    data: schemas.ProjectCreate, actor: CurrentActor, service: Projects
) -> schemas.Project:
    """A new project owned by the caller."""
    return await service.create(actor, data)


@router.get(
    "/projects",
)
async def list_projects(
    actor: CurrentActor,
    service: Projects,
    paging: Paging,
    user_id: Annotated[str | None, Query(pattern=ID_PATTERN.pattern)] = None,
) -> PageOut[schemas.Project]:
    """The caller's projects (ADMIN: any user's, with `user_id`)."""
    page = await service.list_for(actor, user_id or actor.id, paging)
    return to_page_out(page)


@router.get("/projects/{project_id}", responses=responses_for(ProjectNotFound))
async def get_project(
    project_id: IdPath, actor: CurrentActor, service: Projects
) -> schemas.Project:
    """One project."""
    return await service.get(actor, project_id)


@router.patch("/projects/{project_id}", responses=responses_for(ProjectNotFound))
async def update_project(
    project_id: IdPath,
    data: schemas.ProjectUpdate,
    actor: CurrentActor,
    service: Projects,
) -> schemas.Project:
    """Rename or re-describe a project."""
    return await service.update(actor, project_id, data)


@router.delete(
    "/projects/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses_for(ProjectNotFound),
)
async def delete_project(
    project_id: IdPath, actor: CurrentActor, service: Projects, request: Request
) -> None:
    """Delete a project with its sessions, templates, logs and stored objects (audited)."""
    await service.delete(actor, project_id, origin=origin(request, actor))

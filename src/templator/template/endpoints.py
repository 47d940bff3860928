"""/api/v1/templates: CRUD, versions, diff, rollback, workflow and search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from starlette.responses import Response

from templator.ai_session.errors import AiSessionNotFound
from templator.api.deps import Conns, CurrentActor, DbSession, origin
from templator.api.pagination import PageOut, Paging, VersionPaging, to_page_out
from templator.api.problems import responses_for
from templator.hubspot.errors import ModuleCheckFailed
from templator.kit.ids import ID_PATTERN
from templator.kit.pagination import OFFSET_CURSOR_PATTERN
from templator.kit.uow import read_session
from templator.kit.validation import VERSION_PATTERN, IdPath, VersionPath
from templator.models.enums import TemplateStatus
from templator.project.errors import ProjectNotFound
from templator.template import schemas
from templator.template.errors import (
    AiSessionNotCompleted,
    InvalidTemplateTransition,
    NotAllowed,
    ReviewerRoleRequired,
    TemplateArchived,
    TemplateNotFound,
    TemplateVersionNotFound,
    VersionConflict,
)
from templator.template.schemas import Tag
from templator.template.service import TemplateService, public_json

router = APIRouter(tags=["templates"])


async def _templates(session: DbSession, conns: Conns) -> TemplateService:
    """The TemplateService of this request's unit of work."""
    return TemplateService(session, conns.cache, conns.store)


Templates = Annotated[TemplateService, Depends(_templates)]
"""TemplateService, built at the edge for each request (on its DbSession, committed by it)."""


# The hot read first: routes are matched in order.
@router.get(
    "/templates/{template_id}",
    response_model=schemas.Template,
    responses=responses_for(TemplateNotFound),
)
async def get_template(template_id: IdPath, actor: CurrentActor, conns: Conns) -> Response:
    """A template (served from the cache, encoded once)."""
    async with read_session(conns.read_sessionmaker) as session:
        data = await TemplateService(session, conns.cache).get_data(actor, template_id)
    return Response(public_json(data), media_type="application/json")


@router.post(
    "/templates", status_code=status.HTTP_201_CREATED, responses=responses_for(ProjectNotFound)
)
async def create_template(
    data: schemas.TemplateCreate, actor: CurrentActor, service: Templates
) -> schemas.Template:
    """A template made directly (version 1.0.0)."""
    return await service.create(actor, data)


@router.post(
    "/templates/from-session",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(AiSessionNotFound, ProjectNotFound, AiSessionNotCompleted),
)
async def create_from_session(
    data: schemas.TemplateFromSession, actor: CurrentActor, service: Templates
) -> schemas.Template:
    """A template from a COMPLETED session's final result."""
    return await service.create_from_session(actor, data)


@router.get(
    "/templates",
)
async def search(
    actor: CurrentActor,
    conns: Conns,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    tag: Annotated[list[Tag] | None, Query(max_length=20)] = None,
    template_status: Annotated[TemplateStatus | None, Query(alias="status")] = None,
    project_id: Annotated[str | None, Query(pattern=ID_PATTERN.pattern)] = None,
    fuzzy: Annotated[
        bool,
        Query(
            description="when the matches would not fill a page, replace the query's words "
            "no template contains by the nearest-spelled words templates do contain"
        ),
    ] = True,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(pattern=OFFSET_CURSOR_PATTERN)] = None,
) -> PageOut[schemas.TemplateSummary]:
    """Search templates: English full-text with misspelt words corrected, tags, status,
    project. A text search ranks the newest SEARCH_RANK_WINDOW (default 200) matches by
    relevance; without `q`, newest first."""
    query = schemas.TemplateQuery(
        q=q,
        tags=tag,
        status=template_status,
        project_id=project_id,
        fuzzy=fuzzy,
        limit=limit,
        cursor=cursor,
    )
    # Search tolerates replication lag: a replica answers it when one is configured.
    page = await conns.replica_read(
        lambda session: TemplateService(session, conns.cache).search(
            actor, query, window=conns.settings.search_rank_window
        )
    )
    return to_page_out(page)


@router.get("/projects/{project_id}/templates", responses=responses_for(ProjectNotFound))
async def list_templates(
    project_id: IdPath, actor: CurrentActor, service: Templates, paging: Paging
) -> PageOut[schemas.Template]:
    """A project's templates, newest first."""
    return to_page_out(await service.list_for_project(actor, project_id, paging))


@router.patch(
    "/templates/{template_id}",
    responses=responses_for(NotAllowed, TemplateNotFound, TemplateArchived, VersionConflict),
)
async def update_template(
    template_id: IdPath,
    data: schemas.TemplateUpdate,
    actor: CurrentActor,
    service: Templates,
) -> schemas.Template:
    """Change a template; every change makes a new version (`bump`: patch, minor, major)."""
    return await service.update(actor, template_id, data)


@router.delete(
    "/templates/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses_for(NotAllowed, TemplateNotFound),
)
async def delete_template(
    template_id: IdPath, actor: CurrentActor, service: Templates, request: Request
) -> None:
    """Delete a template, its versions and its stored module zips (audited)."""
    await service.delete(actor, template_id, origin=origin(request, actor))


@router.get("/templates/{template_id}/versions", responses=responses_for(TemplateNotFound))
async def list_versions(
    template_id: IdPath,
    actor: CurrentActor,
    service: Templates,
    paging: VersionPaging,
) -> PageOut[schemas.TemplateVersion]:
    """Versions, newest first."""
    return to_page_out(await service.list_versions(actor, template_id, paging))


@router.get(
    "/templates/{template_id}/versions/{version}",
    responses=responses_for(TemplateNotFound, TemplateVersionNotFound),
)
async def get_version(
    template_id: IdPath, version: VersionPath, actor: CurrentActor, service: Templates
) -> schemas.TemplateVersion:
    """One version with its full content."""
    return await service.get_version(actor, template_id, version)


@router.get(
    "/templates/{template_id}/diff",
    responses=responses_for(TemplateNotFound, TemplateVersionNotFound),
)
async def diff(
    template_id: IdPath,
    actor: CurrentActor,
    service: Templates,
    from_version: Annotated[str, Query(alias="from", pattern=VERSION_PATTERN)],
    to_version: Annotated[str, Query(alias="to", pattern=VERSION_PATTERN)],
) -> schemas.TemplateDiff:
    """Per-field differences between two versions."""
    return await service.diff(actor, template_id, from_version, to_version)


@router.post(
    "/templates/{template_id}/rollback",
    responses=responses_for(
        NotAllowed, TemplateNotFound, TemplateVersionNotFound, TemplateArchived, VersionConflict
    ),
)
async def rollback(
    template_id: IdPath,
    data: schemas.Rollback,
    actor: CurrentActor,
    service: Templates,
) -> schemas.Template:
    """Restore an earlier version's content as a new version."""
    return await service.rollback(actor, template_id, data.version)


@router.post(
    "/templates/{template_id}/check",
    responses=responses_for(NotAllowed, TemplateNotFound, VersionConflict),
)
async def check_template(
    template_id: IdPath,
    actor: CurrentActor,
    service: Templates,
    record: Annotated[
        bool,
        Query(
            description="Also store quality_score = the AI session's score (1 without one) "
            "× the check's score, as a new patch version"
        ),
    ] = False,
) -> schemas.ModuleCheck:
    """Check the template as a HubSpot module before it leaves DRAFT: invalid config,
    `module.X` references to fields that do not exist, unbalanced HubL tags, duplicate
    field names (errors); unused fields, images without alt text, unknown keys
    (warnings). Moving DRAFT → REVIEW refuses a template with errors (409
    `module_check_failed`)."""
    report = await service.check(actor, template_id, record=record)
    return schemas.ModuleCheck.model_validate(report.as_json())


@router.post(
    "/templates/{template_id}/status",
    responses=responses_for(
        NotAllowed,
        ReviewerRoleRequired,
        TemplateNotFound,
        InvalidTemplateTransition,
        ModuleCheckFailed,
    ),
)
async def set_status(
    template_id: IdPath,
    data: schemas.StatusChange,
    actor: CurrentActor,
    service: Templates,
) -> schemas.Template:
    """Workflow DRAFT → REVIEW → APPROVED → PUBLISHED → ARCHIVED; approving and publishing
    need EXPERT or ADMIN. DRAFT → REVIEW runs the module check first and answers 409
    `module_check_failed` (problem+json listing the errors) when it finds any."""
    return await service.set_status(actor, template_id, data.status)

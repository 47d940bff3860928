"""/api/v1 object endpoints: design uploads into the store, module exports out of it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile, status
from pydantic import BaseModel, Field

from templator.ai_session.errors import AiSessionNotFound
from templator.api.deps import Conns, CurrentActor, DbSession, origin
from templator.api.problems import responses_for
from templator.hubspot.errors import InvalidHubSpotConfig
from templator.kit.validation import IdPath, JsonInt, RequestModel
from templator.storage.errors import (
    ContentTypeMismatch,
    StoreUnavailable,
    UnsupportedContentType,
    UploadTooLarge,
)
from templator.stored_object.service import StoredObjectService
from templator.template.errors import TemplateNotFound

router = APIRouter(tags=["objects"])


async def _storedobjects(session: DbSession, conns: Conns) -> StoredObjectService:
    """The StoredObjectService of this request's unit of work."""
    return StoredObjectService(session, conns.cache, conns.store)


StoredObjects = Annotated[StoredObjectService, Depends(_storedobjects)]
"""StoredObjectService, built at the edge for each request (on its DbSession, committed by it)."""


class DesignStored(BaseModel):
    """Where an uploaded design was stored."""

    key: str
    size: int
    content_type: str


class ExportRequest(RequestModel):
    """How long the download link lives."""

    expires_in: JsonInt = Field(default=3600, ge=1, le=604_800)


class ExportResult(BaseModel):
    """A stored module zip and its download link."""

    key: str
    url: str
    sha256: str
    bytes: int
    expires_in: int


@router.post(
    "/sessions/{session_id}/designs",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(
        AiSessionNotFound,
        UploadTooLarge,
        UnsupportedContentType,
        ContentTypeMismatch,
        StoreUnavailable,
    ),
)
async def upload_design(
    session_id: IdPath,
    actor: CurrentActor,
    service: StoredObjects,
    file: Annotated[UploadFile, File(description="The design: jpeg, png, gif, webp, html or json")],
    content_type: Annotated[str | None, Form(max_length=100)] = None,
) -> DesignStored:
    """Upload a design file into the object store (size limit and type checked before storing).

    The body is capped while it streams (413 past UPLOAD_MAX_BYTES); the type is sniffed
    from the first bytes, not trusted from the client (415 when it disagrees).
    """
    declared = content_type or file.content_type or "application/octet-stream"
    stored = await service.upload_design(
        actor, session_id, file.file, content_type=declared, declared_size=file.size
    )
    return DesignStored(key=stored.key, size=stored.size, content_type=stored.content_type)


@router.post(
    "/templates/{template_id}/export",
    tags=["templates"],
    responses=responses_for(TemplateNotFound, InvalidHubSpotConfig, StoreUnavailable),
)
async def export_module(
    template_id: IdPath,
    actor: CurrentActor,
    service: StoredObjects,
    request: Request,
    data: ExportRequest | None = None,
) -> ExportResult:
    """Build the HubSpot module zip, store it, and return a presigned download URL (audited)."""
    expires = (data or ExportRequest()).expires_in
    result = await service.export_module(
        actor, template_id, upload=True, origin=origin(request, actor), expires_in=expires
    )
    assert result.key is not None and result.url is not None
    return ExportResult(
        key=result.key,
        url=result.url,
        sha256=result.sha256,
        bytes=len(result.data),
        expires_in=expires,
    )

"""Stored-object API models: designs served back, and direct uploads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, JsonValue

from templator.kit.validation import JsonInt, RequestModel
from templator.storage.validation import EXTENSIONS

DESIGN_KEY_PATTERN = r"^designs/[a-z][0-9a-z]{24}/\d{1,20}\.(?:jpg|png|gif|webp|html|json)$"


class Design(BaseModel):
    """An uploaded design and a link that downloads it (presigned GET, attachment)."""

    key: str
    size: int
    content_type: str
    created_at: datetime
    url: str
    expires_at: datetime


class DesignList(BaseModel):
    """A session's designs, oldest first."""

    items: list[Design]


class DesignStored(BaseModel):
    """Where an uploaded design was stored."""

    key: str
    size: int
    content_type: str


DESIGN_TYPES: list[JsonValue] = [*sorted(EXTENSIONS)]
"""A direct upload's content types, exactly as the store keeps them (no parameters)."""


class DirectUploadRequest(RequestModel):
    """A design the browser will send to the store itself."""

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(
        description="the design's type, exactly one the store keeps (the policy pins it)",
        json_schema_extra={"enum": DESIGN_TYPES},
    )
    size: JsonInt = Field(ge=1, description="the file's size in bytes (the policy's limit)")


class DirectUpload(BaseModel):
    """A presigned POST: send `fields`, then the file as the form's last field `file`, to
    `url` before `expires_at`; then confirm `key`."""

    key: str
    url: str
    fields: dict[str, str]
    expires_at: datetime
    max_bytes: int


class DesignConfirm(RequestModel):
    """The key a direct upload was sent to."""

    key: str = Field(pattern=DESIGN_KEY_PATTERN, max_length=200)


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

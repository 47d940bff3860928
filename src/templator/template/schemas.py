"""Template API models and their limits."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from templator.exceptions import TemplatorError
from templator.hubspot.config import validate_hubspot_config
from templator.kit.ids import ID_PATTERN
from templator.kit.pagination import MAX_LIMIT
from templator.kit.validation import RequestModel
from templator.models.enums import TemplateStatus

MAX_CONTENT = 1024 * 1024
MAX_CONFIG_BYTES = 256 * 1024
MAX_TAGS = 20
TAG_PATTERN = re.compile(r"^[a-z0-9-]{1,50}$")
"""A stored tag."""
TAG_INPUT = r"^[A-Za-z0-9-]{1,50}$"
"""A tag as a client may send it (the schema's pattern); it is stored lowercased."""
Tag = Annotated[str, StringConstraints(pattern=TAG_INPUT)]
HubSpotConfigJson = Annotated[
    dict[str, Any], WithJsonSchema({"allOf": [{"$ref": "#/components/schemas/HubSpotConfig"}]})
]
"""`hubspot_config` as the API takes it: checked against `HubSpotConfig`, whose schema
`api.contract` puts among the OpenAPI document's components."""
Bump = Literal["patch", "minor", "major"]


def _check_tags(tags: list[str] | None) -> list[str] | None:
    if tags is None:
        return None
    cleaned = sorted({t.lower() for t in tags})
    if len(cleaned) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    for tag in cleaned:
        if not TAG_PATTERN.match(tag):
            raise ValueError(f"tag {tag!r} must be 1-50 characters of a-z, 0-9 and -")
    return cleaned


def _check_config(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    # The limit is on the module's configuration; `source` (the files' text as imported)
    # and `files` (its other files) have limits of their own (hubspot/config.py).
    modelled = {k: value[k] for k in ("meta", "fields") if k in value}
    if len(orjson.dumps(modelled)) > MAX_CONFIG_BYTES:
        raise ValueError(f"hubspot_config is over the limit of {MAX_CONFIG_BYTES:,} bytes")
    try:
        validate_hubspot_config(value)
    except TemplatorError as exc:  # a bad config, bad `source` JSON, `files` over a limit
        raise ValueError(exc.message) from None
    return value


NOT_NULL = ("name", "html_content", "hubspot_config", "tags")
"""Fields whose columns cannot be empty: omit them to keep them (`null` is a 422)."""


class _Content(RequestModel):
    # Not `X | None`: null is refused (NOT_NULL), and a union would name the member that
    # failed in every error path (`tags.list[constrained-str].0`). None means "omitted".
    name: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    description: str | None = Field(default=None, max_length=2000)
    html_content: str = Field(default=None, max_length=MAX_CONTENT)  # type: ignore[assignment]
    css_content: str | None = Field(default=None, max_length=MAX_CONTENT)
    js_content: str | None = Field(default=None, max_length=MAX_CONTENT)
    hubspot_config: HubSpotConfigJson = Field(default=None)  # type: ignore[arg-type]
    tags: list[Tag] = Field(default=None, max_length=MAX_TAGS)  # type: ignore[arg-type]
    quality_score: float | None = Field(default=None, ge=0, le=1, strict=True)

    @field_validator(*NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null; omit it to keep it")
        return value

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, value: list[str] | None) -> list[str] | None:
        return _check_tags(value)

    @field_validator("hubspot_config")
    @classmethod
    def _valid_config(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_config(value)


class TemplateCreate(_Content):
    """A template made directly."""

    project_id: str = Field(pattern=r"^[a-z][0-9a-z]{24}$")
    name: str = Field(min_length=1, max_length=200)
    # May be empty: HubSpot keeps modules whose module.html is a 0-byte file.
    html_content: str = Field(max_length=MAX_CONTENT)
    hubspot_config: HubSpotConfigJson
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)


class TemplateOptions(RequestModel):
    """What a template made from a session's final result is called and tagged."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, value: list[str]) -> list[str]:
        return _check_tags(value) or []


class TemplateFromSession(TemplateOptions):
    """A template made from a COMPLETED session's final result."""

    session_id: str = Field(pattern=r"^[a-z][0-9a-z]{24}$")


class TemplateUpdate(_Content):
    """Changes to a template; every change makes a new version."""

    bump: Bump = "patch"


class StatusChange(RequestModel):
    """A workflow move."""

    status: TemplateStatus


class Rollback(RequestModel):
    """Restore the content of an earlier version (as a new version)."""

    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")


class Template(BaseModel):
    """A template as the API shows it."""

    id: str
    project_id: str
    session_id: str | None
    name: str
    description: str | None
    html_content: str
    css_content: str | None
    js_content: str | None
    hubspot_config: dict[str, Any]
    version: str
    status: TemplateStatus
    quality_score: float | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime


class TemplateSummary(BaseModel):
    """A search hit."""

    id: str
    project_id: str
    name: str
    description: str | None
    status: TemplateStatus
    version: str
    tags: list[str]
    rank: float
    updated_at: datetime


class TemplateQuery(RequestModel):
    """Search filters, page size and the previous page's (offset) cursor."""

    q: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=20)
    status: TemplateStatus | None = None
    project_id: str | None = Field(default=None, pattern=ID_PATTERN.pattern)
    fuzzy: bool = True
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=200)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        cleaned = [t.strip().lower() for t in value]
        bad = [t for t in cleaned if not TAG_PATTERN.match(t)]
        if bad:
            raise ValueError(f"tag {bad[0]!r} must be 1-50 characters of a-z, 0-9 and -")
        return cleaned


class TemplateVersion(BaseModel):
    """One stored version."""

    id: str
    template_id: str
    version: str
    changes: Any
    content: dict[str, Any]
    created_at: datetime


class FieldDiff(BaseModel):
    """How one field differs between two versions."""

    field: str
    changed: bool
    unified_diff: str | None = None
    changed_paths: list[str] | None = None
    before: Any = None
    after: Any = None


class TemplateDiff(BaseModel):
    """Per-field differences between two versions."""

    template_id: str
    from_version: str
    to_version: str
    fields: list[FieldDiff]


class ModuleCheckFinding(BaseModel):
    """One finding of `module check`."""

    severity: Literal["error", "warning"]
    code: str = Field(description="Stable code, e.g. unknown_field, unbalanced_tag, unused_field")
    file: str = Field(description="meta.json, fields.json, module.html or a .graphql file")
    line: int | None = Field(
        default=None, description="1-based line in that file, when known (the first of lines)"
    )
    path: str | None = Field(
        default=None, description="The field path it is about, by names: fields > hero > title"
    )
    message: str
    lines: list[int] = Field(
        default_factory=list, description="Every line the same problem occurs on"
    )
    impact: Literal["upload", "render", "style"] = Field(
        default="style",
        description="On HubSpot: would not upload, would render wrong, or a matter of style",
    )


class ModuleCheck(BaseModel):
    """What `module check` found; `score` = max(0, 1 - 0.2 × errors - 0.05 × warnings)."""

    module: str
    ok: bool = Field(description="No errors: the template may leave DRAFT")
    score: float
    errors: int
    warnings: int
    findings: list[ModuleCheckFinding]

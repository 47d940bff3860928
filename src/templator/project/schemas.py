"""Project API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from templator.kit.validation import RequestModel


class ProjectCreate(RequestModel):
    """A new project."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class ProjectUpdate(RequestModel):
    """Changes to a project."""

    # `null` is refused (a project cannot lose its name), so the schema does not offer it;
    # None is only the default, meaning "omitted".
    name: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("name", mode="before")
    @classmethod
    def _name_not_null(cls, value: Any) -> Any:
        # Omit `name` to keep it; a project cannot lose its name.
        if value is None:
            raise ValueError("name cannot be null; omit it to keep the current name")
        return value


class Project(BaseModel):
    """A project as the API shows it."""

    id: str
    name: str
    description: str | None
    user_id: str
    created_at: datetime
    updated_at: datetime

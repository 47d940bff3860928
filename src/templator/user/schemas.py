"""User API models."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from templator.kit.repository import JsonRow
from templator.kit.validation import RequestModel
from templator.models.enums import UserRole


def normalize_email(email: str) -> str:
    """The one spelling an address is stored and looked up under: NFKC (a fullwidth
    `ａ@example.com` is `a@example.com`), lowercase, and NFKC again (lowering can leave a
    form NFKC would compose), so two ways of writing one address cannot be two users."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).lower())


class UserCreate(RequestModel):
    """A new user."""

    email: EmailStr = Field(max_length=320)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: UserRole = UserRole.USER

    @field_validator("email")
    @classmethod
    def _normalized(cls, value: str) -> str:
        return normalize_email(value)


class UserUpdate(RequestModel):
    """Changes to a user's own profile."""

    name: str | None = Field(default=None, min_length=1, max_length=200)


class RoleChange(RequestModel):
    """A role change (ADMIN only)."""

    role: UserRole


class User(BaseModel):
    """A user as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str | None
    role: UserRole
    created_at: datetime
    updated_at: datetime


class UserExport(TypedDict):
    """Everything stored about a user (GDPR access), table by table, each row whole in its
    JSON form; each object row also carries a presigned `download_url` when a store is
    configured. Each domain answers for its own tables (user/service.py)."""

    user: JsonRow
    projects: list[JsonRow]
    ai_sessions: list[JsonRow]
    templates: list[JsonRow]
    template_versions: list[JsonRow]
    processing_logs: list[JsonRow]
    api_tokens: list[JsonRow]
    objects: list[JsonRow]

"""Token API models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from templator.kit.validation import JsonInt, RequestModel


class TokenCreate(RequestModel):
    """A new token for the calling user."""

    name: str = Field(min_length=1, max_length=100)
    expires_days: JsonInt | None = Field(default=90, ge=1, le=3650)


class TokenInfo(BaseModel):
    """A token without its secret."""

    id: str
    user_id: str
    prefix: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenInfo):
    """A new token: the only time its secret is shown."""

    token: str

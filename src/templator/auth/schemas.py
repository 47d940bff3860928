"""Token API models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from annotated_types import Interval
from pydantic import BaseModel, Field

from templator.kit.validation import JsonInt, RequestModel

DEFAULT_TOKEN_DAYS = 90
"""A token's lifetime when none is asked for (or TOKEN_MAX_DAYS, when that is shorter)."""


class TokenCreate(RequestModel):
    """A new token for the calling user."""

    name: str = Field(min_length=1, max_length=100)
    expires_days: Annotated[JsonInt, Interval(ge=1, le=3650)] | None = DEFAULT_TOKEN_DAYS


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

"""Token API models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from annotated_types import Interval
from pydantic import BaseModel, Field

from templator.kit.validation import JsonInt, RequestModel

DEFAULT_TOKEN_DAYS = 90
"""A token's lifetime when none is asked for (or TOKEN_MAX_DAYS, when that is shorter)."""


class TokenCreate(RequestModel):
    """A new token for the calling user."""

    name: str = Field(min_length=1, max_length=100)
    expires_days: Annotated[JsonInt, Interval(ge=1, le=3650)] | None = DEFAULT_TOKEN_DAYS
    scopes: list[Literal["worker"]] = Field(
        default_factory=list,
        max_length=1,
        description='["worker"]: a machine credential of the work queue, which may only claim '
        "sessions, read them and write those it holds a lease on (only an ADMIN creates "
        "one); none: everything the user may do",
    )


class TokenInfo(BaseModel):
    """A token without its secret."""

    id: str
    user_id: str
    prefix: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    scopes: list[str] = []


class TokenCreated(TokenInfo):
    """A new token: the only time its secret is shown."""

    token: str

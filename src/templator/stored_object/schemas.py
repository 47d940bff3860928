"""Stored-object API models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Design(BaseModel):
    """An uploaded design with a presigned download URL (an attachment, never inline)."""

    key: str
    size: int
    content_type: str
    created_at: datetime
    url: str
    expires_at: datetime

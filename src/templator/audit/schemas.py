"""Audit API models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditRecord(BaseModel):
    """One audit entry."""

    id: str
    actor_id: str | None
    actor_email: str | None
    action: str
    target_type: str
    target_id: str | None
    request_id: str | None
    details: dict[str, Any] | None
    created_at: datetime

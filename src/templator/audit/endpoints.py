"""/api/v1/audit: the trail of sensitive actions (ADMIN)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from templator.api.deps import AdminActor, DbSession
from templator.api.pagination import PageOut, Paging, to_page_out
from templator.api.problems import responses_for
from templator.audit import service as audit
from templator.auth.errors import AdminRequired

router = APIRouter(tags=["audit"])


@router.get("/audit", responses=responses_for(AdminRequired))
async def read_audit(
    actor: AdminActor,
    session: DbSession,
    paging: Paging,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
) -> PageOut[audit.AuditRecord]:
    """The audit trail, newest first (ADMIN)."""
    return to_page_out(await audit.list_entries(session, paging, target_id=target_id))

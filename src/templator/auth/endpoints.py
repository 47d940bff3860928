"""/api/v1/tokens: the caller's API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from templator.api.deps import Conns, CurrentActor, DbSession, origin
from templator.api.problems import responses_for
from templator.auth import schemas
from templator.auth.errors import AdminRequired, TokenNotFound
from templator.auth.service import TokenService
from templator.kit.validation import IdPath

router = APIRouter(tags=["tokens"])


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(AdminRequired),
)
async def create_token(
    data: schemas.TokenCreate,
    actor: CurrentActor,
    conns: Conns,
    session: DbSession,
    request: Request,
) -> schemas.TokenCreated:
    """A new API token for the caller; the secret is shown only in this response (audited).
    `"scopes": ["worker"]` makes a work-queue credential (ADMIN only)."""
    return await TokenService(session, conns.cache).create(
        actor.id,
        data,
        origin=origin(request, actor),
        max_days=conns.settings.token_max_days,
        owner_role=actor.role,
    )


@router.get("/tokens")
async def list_tokens(
    actor: CurrentActor, conns: Conns, session: DbSession
) -> list[schemas.TokenInfo]:
    """The caller's tokens (without secrets)."""
    return await TokenService(session, conns.cache).list_for(actor.id)


@router.delete("/tokens/{token_id}", responses=responses_for(TokenNotFound))
async def revoke_token(
    token_id: IdPath, actor: CurrentActor, conns: Conns, session: DbSession, request: Request
) -> schemas.TokenInfo:
    """Revoke a token at once (audited)."""
    return await TokenService(session, conns.cache).revoke(
        actor, token_id, origin=origin(request, actor)
    )

"""/api/v1/tokens: the caller's API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from templator.api.deps import Conns, CurrentActor, DbSession, origin
from templator.api.problems import responses_for
from templator.auth import schemas
from templator.auth.errors import AdminRequired, TokenNotFound
from templator.auth.service import TokenService
from templator.kit.validation import IdPath

router = APIRouter(tags=["tokens"])


async def _tokens(session: DbSession, conns: Conns) -> TokenService:
    """The TokenService of this request's unit of work."""
    return TokenService(session, conns.cache)


Tokens = Annotated[TokenService, Depends(_tokens)]
"""TokenService, built at the edge for each request (on its DbSession, committed by it)."""


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(AdminRequired),
)
async def create_token(
    data: schemas.TokenCreate,
    actor: CurrentActor,
    conns: Conns,
    service: Tokens,
    request: Request,
) -> schemas.TokenCreated:
    """A new API token for the caller; the secret is shown only in this response (audited).
    `"scopes": ["worker"]` makes a work-queue credential (ADMIN only)."""
    return await service.create(
        actor.id,
        data,
        origin=origin(request, actor),
        max_days=conns.settings.token_max_days,
        owner_role=actor.role,
    )


@router.get("/tokens")
async def list_tokens(actor: CurrentActor, service: Tokens) -> list[schemas.TokenInfo]:
    """The caller's tokens (without secrets)."""
    return await service.list_for(actor.id)


@router.delete("/tokens/{token_id}", responses=responses_for(TokenNotFound))
async def revoke_token(
    token_id: IdPath, actor: CurrentActor, service: Tokens, request: Request
) -> schemas.TokenInfo:
    """Revoke a token at once (audited)."""
    return await service.revoke(actor, token_id, origin=origin(request, actor))

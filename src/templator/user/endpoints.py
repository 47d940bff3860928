"""/api/v1/users and /api/v1/tokens."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from templator.api.deps import AdminActor, Conns, CurrentActor, Uow, request_id
from templator.api.pages import PageOut, Paging, to_page_out
from templator.api.problems import responses_for
from templator.audit import service as audit
from templator.auth import schemas as token_schemas
from templator.auth.service import TokenService
from templator.kit.actor import Actor
from templator.kit.validation import IdPath
from templator.storage.assets import AssetService
from templator.template.service import TemplateService
from templator.user import schemas
from templator.user.errors import UserNotFound
from templator.user.gdpr import export_user_data
from templator.user.service import UserService

router = APIRouter(tags=["users"])
AUTH = (401, 403, 404, 422)


def _self_or_admin(actor: Actor, user_id: str) -> None:
    if not actor.may_access(user_id):
        raise UserNotFound(user_id)


@router.post(
    "/users", status_code=status.HTTP_201_CREATED, responses=responses_for(401, 403, 409, 422)
)
async def create_user(
    data: schemas.UserCreate, actor: AdminActor, uow: Uow, request: Request
) -> schemas.User:
    """Create a user (ADMIN)."""
    async with uow() as session:
        user = await UserService(session).create(data)
        await audit.record(
            session,
            actor,
            "user.create",
            target_type="user",
            target_id=user.id,
            request_id=request_id(request),
            details={"role": user.role.value},
        )
    return user


@router.get("/users", responses=responses_for(401, 403, 422))
async def list_users(actor: AdminActor, uow: Uow, paging: Paging) -> PageOut[schemas.User]:
    """All users (ADMIN)."""
    async with uow() as session:
        return to_page_out(await UserService(session).list(paging))


@router.get("/users/me", responses=responses_for(401))
async def me(actor: CurrentActor, uow: Uow) -> schemas.User:
    """The calling user."""
    async with uow() as session:
        return await UserService(session).get(actor.id)


@router.get("/users/{user_id}", responses=responses_for(*AUTH))
async def get_user(user_id: IdPath, actor: CurrentActor, uow: Uow) -> schemas.User:
    """A user (themselves, or any for ADMIN)."""
    _self_or_admin(actor, user_id)
    async with uow() as session:
        return await UserService(session).get(user_id)


@router.patch("/users/{user_id}", responses=responses_for(*AUTH))
async def update_user(
    user_id: IdPath, data: schemas.UserUpdate, actor: CurrentActor, uow: Uow
) -> schemas.User:
    """Change a profile (themselves, or any for ADMIN)."""
    _self_or_admin(actor, user_id)
    async with uow() as session:
        return await UserService(session).update(user_id, data)


@router.put("/users/{user_id}/role", responses=responses_for(*AUTH))
async def set_role(
    user_id: IdPath, data: schemas.RoleChange, actor: AdminActor, uow: Uow, request: Request
) -> schemas.User:
    """Change a user's role (ADMIN only; audited)."""
    async with uow() as session:
        before = await UserService(session).get(user_id)
        user = await UserService(session).set_role(user_id, data.role)
        await TokenService(session, request.app.state.connections.cache).forget_user(user_id)
        await audit.record(
            session,
            actor,
            "user.role_change",
            target_type="user",
            target_id=user_id,
            request_id=request_id(request),
            details={"from": before.role.value, "to": data.role.value},
        )
    return user


@router.get("/users/{user_id}/export", responses=responses_for(*AUTH))
async def export_user(
    user_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow, request: Request
) -> dict[str, Any]:
    """Everything stored about a user, with links to their objects (GDPR access; audited)."""
    _self_or_admin(actor, user_id)
    async with uow() as session:
        data = await export_user_data(session, conns, user_id)
        await audit.record(
            session,
            actor,
            "user.export",
            target_type="user",
            target_id=user_id,
            request_id=request_id(request),
        )
    return data


@router.delete("/users/{user_id}", status_code=status.HTTP_200_OK, responses=responses_for(*AUTH))
async def erase_user(
    user_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow, request: Request
) -> dict[str, Any]:
    """Erase a user and everything theirs, objects included (GDPR erasure; audited)."""
    _self_or_admin(actor, user_id)
    async with uow() as session:
        assets = AssetService(
            session, conns.store, TemplateService(session, conns.cache, conns.store)
        )
        keys = await assets.objects_of_user(user_id) if conns.store else []
        await TokenService(session, conns.cache).forget_user(user_id)
        counts = await UserService(session).erase(user_id)
        await audit.record(
            session,
            actor,
            "user.erase",
            target_type="user",
            target_id=user_id,
            request_id=request_id(request),
            details={**counts, "objects": len(keys)},
        )
    if keys and conns.store is not None:
        await asyncio.to_thread(conns.store.delete_many, keys)
    return {"erased": user_id, "removed": {**counts, "objects": len(keys)}}


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    tags=["tokens"],
    responses=responses_for(401, 422),
)
async def create_token(
    data: token_schemas.TokenCreate, actor: CurrentActor, conns: Conns, uow: Uow, request: Request
) -> token_schemas.TokenCreated:
    """A new API token for the caller; the secret is shown only in this response (audited)."""
    async with uow() as session:
        created = await TokenService(session, conns.cache).create(actor.id, data)
        await audit.record(
            session,
            actor,
            "token.create",
            target_type="token",
            target_id=created.id,
            request_id=request_id(request),
        )
    return created


@router.get("/tokens", tags=["tokens"], responses=responses_for(401))
async def list_tokens(actor: CurrentActor, conns: Conns, uow: Uow) -> list[token_schemas.TokenInfo]:
    """The caller's tokens (without secrets)."""
    async with uow() as session:
        return await TokenService(session, conns.cache).list_for(actor.id)


@router.delete("/tokens/{token_id}", tags=["tokens"], responses=responses_for(401, 404))
async def revoke_token(
    token_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow, request: Request
) -> token_schemas.TokenInfo:
    """Revoke a token at once (audited)."""
    async with uow() as session:
        info = await TokenService(session, conns.cache).revoke(actor, token_id)
        await audit.record(
            session,
            actor,
            "token.revoke",
            target_type="token",
            target_id=token_id,
            request_id=request_id(request),
        )
    return info


@router.get("/audit", tags=["audit"], responses=responses_for(401, 403, 422))
async def read_audit(
    actor: AdminActor,
    uow: Uow,
    paging: Paging,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
) -> PageOut[audit.AuditRecord]:
    """The audit trail, newest first (ADMIN)."""
    async with uow() as session:
        return to_page_out(await audit.list_entries(session, paging, target_id=target_id))

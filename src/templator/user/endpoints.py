"""/api/v1/users: profiles, roles, GDPR export and erasure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status

from templator.api.deps import AdminActor, Conns, CurrentActor, DbSession, Uow, origin
from templator.api.pagination import PageOut, Paging, to_page_out
from templator.api.problems import responses_for
from templator.auth.errors import AdminRequired
from templator.kit.actor import Actor
from templator.kit.validation import IdPath
from templator.user import schemas
from templator.user.errors import EmailTaken, UserNotFound
from templator.user.service import UserService

router = APIRouter(tags=["users"])


async def _users(session: DbSession, conns: Conns) -> UserService:
    """The UserService of this request's unit of work."""
    return UserService(session, conns.cache, conns.store)


Users = Annotated[UserService, Depends(_users)]
"""UserService, built at the edge for each request (on its DbSession, committed by it)."""


def _self_or_admin(actor: Actor, user_id: str) -> None:
    if not actor.may_access(user_id):
        raise UserNotFound(user_id)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses=responses_for(AdminRequired, EmailTaken),
)
async def create_user(
    data: schemas.UserCreate, actor: AdminActor, service: Users, request: Request
) -> schemas.User:
    """Create a user (ADMIN)."""
    return await service.create(data, origin=origin(request, actor))


@router.get("/users", responses=responses_for(AdminRequired))
async def list_users(actor: AdminActor, service: Users, paging: Paging) -> PageOut[schemas.User]:
    """All users (ADMIN)."""
    return to_page_out(await service.list(paging))


@router.get("/users/me", responses=responses_for(UserNotFound))
async def me(actor: CurrentActor, service: Users) -> schemas.User:
    """The calling user."""
    return await service.get(actor.id)


@router.get("/users/{user_id}", responses=responses_for(UserNotFound))
async def get_user(user_id: IdPath, actor: CurrentActor, service: Users) -> schemas.User:
    """A user (themselves, or any for ADMIN)."""
    _self_or_admin(actor, user_id)
    return await service.get(user_id)


@router.patch("/users/{user_id}", responses=responses_for(UserNotFound))
async def update_user(
    user_id: IdPath,
    data: schemas.UserUpdate,
    actor: CurrentActor,
    service: Users,
) -> schemas.User:
    """Change a profile (themselves, or any for ADMIN)."""
    _self_or_admin(actor, user_id)
    return await service.update(user_id, data)


@router.put("/users/{user_id}/role", responses=responses_for(AdminRequired, UserNotFound))
async def set_role(
    user_id: IdPath,
    data: schemas.RoleChange,
    actor: AdminActor,
    service: Users,
    request: Request,
) -> schemas.User:
    """Change a user's role (ADMIN only; audited)."""
    return await service.set_role(user_id, data.role, origin=origin(request, actor))


@router.get("/users/{user_id}/export", responses=responses_for(UserNotFound))
async def export_user(
    user_id: IdPath, actor: CurrentActor, service: Users, request: Request
) -> dict[str, Any]:
    """Everything stored about a user, with links to their objects (GDPR access; audited)."""
    _self_or_admin(actor, user_id)
    export = await service.export_data(user_id, origin=origin(request, actor))
    return dict(export)


@router.delete(
    "/users/{user_id}", status_code=status.HTTP_200_OK, responses=responses_for(UserNotFound)
)
async def erase_user(
    user_id: IdPath, actor: CurrentActor, conns: Conns, uow: Uow, request: Request
) -> dict[str, Any]:
    """Erase a user and everything theirs, objects included (GDPR erasure; audited).

    `removed` counts what is gone: rows, and the objects the store deleted after the
    commit; `left_for_gc.objects` counts objects it could not delete then (the store was
    unreachable, or none is configured), which `templator storage gc` removes later.
    """
    _self_or_admin(actor, user_id)
    async with uow() as session:
        erasure = await UserService(session, conns.cache, conns.store).erase(
            user_id, origin=origin(request, actor)
        )
    return {
        "erased": user_id,
        "removed": {**erasure.rows, "objects": erasure.objects_deleted},
        "left_for_gc": {"objects": erasure.objects_left},
    }

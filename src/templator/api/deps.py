"""Request dependencies: the connection layer, the caller, units of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from templator.api.auth_limit import AuthFailureLimiter
from templator.api.scopes import check_scopes
from templator.api.sse import ProgressHub
from templator.audit.service import Origin
from templator.auth.errors import AdminRequired
from templator.auth.service import TokenService
from templator.connections import Connections
from templator.exceptions import Unauthorized
from templator.kit.actor import Actor
from templator.kit.uow import read_session, unit_of_work


async def get_connections(request: Request) -> Connections:
    """The app's connection layer."""
    conns: Connections = request.app.state.connections
    return conns


Conns = Annotated[Connections, Depends(get_connections)]
UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def api_unit(
    conns: Connections, *, autocommit: bool = False
) -> AbstractAsyncContextManager[AsyncSession]:
    """An API unit of work: on the driver pool (`kit/uow.py`), in autocommit for an
    endpoint whose write is one statement (its statements on the statement pool)."""
    return unit_of_work(
        conns.sessionmaker,
        conns.cache,
        driver=conns.driver_pool,
        autocommit=autocommit,
        statements=conns.statement_pool,
    )


async def get_uow(conns: Conns) -> UnitOfWork:
    """A factory of units of work: the endpoint commits by leaving the block."""
    return lambda: api_unit(conns)


Uow = Annotated[UnitOfWork, Depends(get_uow)]
"""For endpoints with work after the commit (object deletion, streaming): `async with uow()`."""


async def get_statement_uow(conns: Conns) -> UnitOfWork:
    """A factory of units whose writes are each one statement (`get_statement_session`)."""
    return lambda: api_unit(conns, autocommit=True)


StatementUow = Annotated[UnitOfWork, Depends(get_statement_uow)]
"""For a loop of one-statement units in one request (the work claim's long poll)."""


async def get_db_session(conns: Conns) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: commit when the endpoint returns, roll back if it raises.
    Its raw statements run on the driver pool (`kit/uow.py`)."""
    async with api_unit(conns) as session:
        yield session


# scope="function": the commit happens when the endpoint returns, before the response is
# sent, so a failed commit is the client's error response and a 2xx means it is durable.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


async def get_statement_session(conns: Conns) -> AsyncIterator[AsyncSession]:
    """A unit of work for an endpoint whose write is ONE statement (a worker's phase,
    completion, failure, heartbeat: each a conditional UPDATE): its statements commit by
    themselves on the driver pool, without the BEGIN and COMMIT round trips (`kit/uow.py`).
    What such an endpoint reads besides (the state that explains a refusal) needs no
    transaction either."""
    async with api_unit(conns, autocommit=True) as session:
        yield session


DbStatement = Annotated[AsyncSession, Depends(get_statement_session, scope="function")]


async def get_bearer_token(request: Request) -> str:
    """The bearer token of `Authorization: Bearer tpl_…`; 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing credentials: send `Authorization: Bearer <API token>`")
    return token.strip()


BearerToken = Annotated[str, Depends(get_bearer_token)]


async def get_actor(request: Request, conns: Conns, token: BearerToken) -> Actor:
    """The caller, from `Authorization: Bearer tpl_…`; 401 otherwise, 429 instead for an
    address that failed too often (a valid token is always served: `api/auth_limit.py`),
    403 for a scoped token outside its routes (`api/scopes.py`)."""
    limiter: AuthFailureLimiter = request.app.state.auth_limiter
    address = request.client.host if request.client else "unknown"
    try:
        async with read_session(conns.read_sessionmaker) as session:
            actor = await TokenService(session, conns.cache).authenticate(token)
    except Unauthorized:
        await limiter.failed(address)
        raise
    check_scopes(actor, request)
    return actor


CurrentActor = Annotated[Actor, Depends(get_actor)]
LeaseToken = Annotated[
    str | None,
    Header(
        alias="Lease-Token",
        description="the lease of a claim (POST /work/claim): required on a session a worker "
        "holds, and on every write of a worker credential",
    ),
]


def token_checker(conns: Connections, token: str) -> Callable[[], Awaitable[bool]]:
    """Whether `token` still stands for its user (not revoked, expired or erased): for a
    response that outlives its request's authentication, such as an event stream."""

    async def still_valid() -> bool:
        async with read_session(conns.read_sessionmaker) as session:
            return await TokenService(session, conns.cache).is_valid(token)

    return still_valid


async def get_admin(actor: CurrentActor) -> Actor:
    """The caller, who must be ADMIN; 403 otherwise."""
    if not actor.is_admin:
        raise AdminRequired
    return actor


AdminActor = Annotated[Actor, Depends(get_admin)]


async def get_hub(request: Request) -> ProgressHub:
    """The process's pub/sub fan-out for SSE streams."""
    hub: ProgressHub = request.app.state.progress_hub
    return hub


Hub = Annotated[ProgressHub, Depends(get_hub)]


def request_id(request: Request) -> str | None:
    """The request's id (X-Request-ID)."""
    value: str | None = getattr(request.state, "request_id", None)
    return value


def origin(request: Request, actor: Actor) -> Origin:
    """The caller and the request's id, as the audit entries of the request name them."""
    return Origin(actor, request_id(request))

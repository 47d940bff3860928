"""`templator token`: create, list and revoke API tokens from the command line."""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate, TokenInfo
from templator.auth.service import TokenService
from templator.cli.context import connections, console, fail, run
from templator.kit.actor import Actor
from templator.kit.uow import unit_of_work
from templator.user.service import UserService

app = typer.Typer(no_args_is_help=True)


class WorkerScope(StrEnum):
    """The scopes a token may be limited to."""

    WORKER = "worker"


async def _create(who: str, data: TokenCreate) -> tuple[str, str]:
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        user = await UserService(session, conns.cache).find(who)
        created = await TokenService(session, conns.cache).create(
            user.id,
            data,
            origin=CLI,
            max_days=conns.settings.token_max_days,
            owner_role=user.role,
        )
        return created.token, user.email


@app.command("create")
def create(
    user: str = typer.Option(..., "--user", help="Email or id of the token's owner."),
    name: str = typer.Option("cli", help="A label for the token."),
    expires_days: int = typer.Option(
        90, min=1, max=3650, help="Lifetime in days (at most TOKEN_MAX_DAYS)."
    ),
    scope: list[WorkerScope] = typer.Option(
        [],
        "--scope",
        help="Limit the token: `worker` makes a work-queue credential (claim and work on "
        "sessions only); the user must be an ADMIN.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Create an API token; it is printed once and stored only as a hash."""
    data = TokenCreate(name=name, expires_days=expires_days, scopes=[s.value for s in scope])
    token, email = run(_create(user, data))
    if as_json:
        print(json.dumps({"token": token, "user": email}))
    else:
        console.print(f"token for {email} (shown once):\n{token}")


async def _list(who: str) -> list[TokenInfo]:
    async with connections() as conns, conns.sessionmaker() as session:
        user = await UserService(session, conns.cache).find(who)
        return await TokenService(session, conns.cache).list_for(user.id)


@app.command("list")
def list_tokens(
    user: str = typer.Option(..., "--user", help="Email or id of the tokens' owner."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List a user's tokens (never their secrets)."""
    infos = run(_list(user))
    if as_json:
        print(json.dumps([info.model_dump(mode="json") for info in infos]))
        return
    for info in infos:
        state = "revoked" if info.revoked_at else f"expires {info.expires_at or 'never'}"
        console.print(f"{info.id}  tpl_{info.prefix}_…  {info.name}  {state}")


async def _revoke(who: str, token: str) -> TokenInfo | None:
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        user = await UserService(session, conns.cache).find(who)
        service = TokenService(session, conns.cache)
        match = [t for t in await service.list_for(user.id) if token in (t.id, t.prefix)]
        if not match:
            return None
        return await service.revoke(Actor(user.id, user.role), match[0].id, origin=CLI)


@app.command("revoke")
def revoke(
    token: str = typer.Argument(..., help="The token's id or prefix (from `token list`)."),
    user: str = typer.Option(..., "--user", help="Email or id of the token's owner."),
) -> None:
    """Revoke a token at once (audited); cached lookups are dropped too."""
    info = run(_revoke(user, token))
    if info is None:
        fail(f"{user} has no token {token!r}; see `templator token list --user {user}`")
        return
    console.print(f"revoked token {info.id} ({info.name}) of {user}")

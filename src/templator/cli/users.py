"""`templator user`: create users and change roles from the command line."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from templator.audit.service import CLI
from templator.cli import tokens
from templator.cli.context import connections, console, fail, run
from templator.kit.uow import unit_of_work
from templator.models import UserRole
from templator.user.schemas import User, UserCreate
from templator.user.service import UserService

app = typer.Typer(no_args_is_help=True)
user_app = app
token_app = tokens.app
"""Kept for cli/main.py, which registers `user_app` and `token_app`."""


async def _create_user(data: UserCreate) -> User:
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        return await UserService(session, conns.cache).create(data, origin=CLI)


@app.command("create")
def create_user(
    email: str = typer.Option(..., help="The user's email (unique)."),
    role: UserRole = typer.Option(UserRole.USER, help="USER, EXPERT or ADMIN."),
    name: str | None = typer.Option(None, help="Display name."),
    as_json: bool = typer.Option(False, "--json", help="Print the user as JSON."),
) -> None:
    """Create a user."""
    try:
        data = UserCreate(email=email, role=role, name=name)
    except ValidationError as exc:
        fail(f"invalid user: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        return
    user = run(_create_user(data))
    if as_json:
        print(user.model_dump_json())
    else:
        console.print(f"created {user.role.value} {user.email} ({user.id})")


async def _set_role(who: str, role: UserRole) -> User:
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        service = UserService(session, conns.cache)
        user = await service.find(who)
        return await service.set_role(user.id, role, origin=CLI)


@app.command("set-role")
def set_role(
    user: str = typer.Argument(..., help="Email or id."),
    role: UserRole = typer.Argument(..., help="USER, EXPERT or ADMIN."),
) -> None:
    """Change a user's role (audited)."""
    updated = run(_set_role(user, role))
    console.print(f"{updated.email} is now {updated.role.value}")

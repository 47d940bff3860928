"""What every CLI command shares: settings, the connection layer, clean error exits."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from templator.cli.errors import exit_for
from templator.config import ProcessRole, Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from templator.connections import Connections

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; an expected failure (cli/errors.py) becomes one line and exit 1."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except Exception as exc:
        exit_for(exc)


def fail(message: str, *, code: int = 2) -> None:
    """Print an error and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings() -> Settings:
    """The settings, with a one-line message naming each invalid variable."""
    try:
        return get_settings()
    except Exception as exc:  # pydantic's ValidationError lists every bad variable
        errors = getattr(exc, "errors", None)
        if not callable(errors):
            raise
        # Variable names and reasons only: the values may hold passwords.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}: "
            f"{str(error['msg']).removeprefix('Value error, ')}"
            for error in errors()
        )
        fail(f"invalid configuration: {problems} (see .env.example)")
        raise  # unreachable: fail() exits


@asynccontextmanager
async def connections(role: ProcessRole = ProcessRole.CLI) -> AsyncIterator[Connections]:
    """Open the connection layer for one command and close it afterwards."""
    from templator.cli.stack import find_local_stack
    from templator.connections import Connections

    conns = Connections.from_settings(settings(), role=role, find_stack=find_local_stack)
    try:
        yield conns
    except Exception as exc:
        outage = conns.outage(exc)
        if outage is None:
            raise
        raise outage from exc
    finally:
        await conns.close()


@dataclass(frozen=True, slots=True)
class Database:
    """PostgreSQL alone, for the commands that need nothing else."""

    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


@asynccontextmanager
async def database(
    role: ProcessRole = ProcessRole.CLI, *, admin: bool = False
) -> AsyncIterator[Database]:
    """Open PostgreSQL alone (checked: a clear error when it cannot be reached); no Redis
    or object store is resolved, so the command runs without them. `admin`: as the schema
    owner (DATABASE_ADMIN_URL or the local stack's), for migrations and bulk loads."""
    from templator import postgres
    from templator.cli.stack import find_local_stack
    from templator.connections import resolve_database_url, store_outage, verify_database

    url = resolve_database_url(settings(), admin=admin, find_stack=find_local_stack)
    engine = postgres.create_engine(settings(), url=url, role=role)
    try:
        await verify_database(engine, url)
        yield Database(url, engine, postgres.create_sessionmaker(engine))
    except Exception as exc:
        outage = store_outage(exc, database_url=url)
        if outage is None:
            raise
        raise outage from exc
    finally:
        await engine.dispose()


def confirm_destructive(*, target: str, action: str, yes: bool) -> None:
    """Ask the operator to retype `target` before a destructive action, unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"refusing to {action} without confirmation: pass --yes to run non-interactively")
    typed = typer.prompt(f"This will {action}. Type {target!r} to confirm")
    if typed != target:
        fail("confirmation did not match; nothing was changed")

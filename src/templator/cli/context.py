"""What every CLI command shares: settings, the connection layer, clean error exits."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console

from templator.config import ProcessRole, Settings, get_settings
from templator.connections import Connections
from templator.exceptions import TemplatorError

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a TemplatorError becomes a one-line message and exit code 1."""
    try:
        return asyncio.run(coro)
    except TemplatorError as exc:
        where = f" ({exc.field})" if exc.field else ""
        err_console.print(f"[bold red]error{where}:[/] {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def fail(message: str, *, code: int = 2) -> None:
    """Print an error and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def settings() -> Settings:
    """The settings, with a readable message when the environment is invalid."""
    try:
        return get_settings()
    except Exception as exc:  # pydantic's ValidationError lists every bad variable
        fail(f"invalid configuration: {exc}")
        raise  # unreachable: fail() exits


@asynccontextmanager
async def connections(role: ProcessRole = ProcessRole.CLI) -> AsyncIterator[Connections]:
    """Open the connection layer for one command and close it afterwards."""
    conns = Connections.from_settings(settings(), role=role)
    try:
        yield conns
    finally:
        await conns.close()


def confirm_destructive(*, target: str, action: str, yes: bool) -> None:
    """Ask the operator to retype `target` before a destructive action, unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"refusing to {action} without confirmation: pass --yes to run non-interactively")
    typed = typer.prompt(f"This will {action}. Type {target!r} to confirm")
    if typed != target:
        fail("confirmation did not match; nothing was changed")


def configure_logging(verbose: bool) -> None:
    """Warnings by default, everything with --verbose."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )

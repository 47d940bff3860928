"""`templator demo`: run one Templator session end to end through the HTTP API."""

from __future__ import annotations

import re
import time

import httpx
import typer
from rich.table import Table

from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.cli.context import connections, console, fail, run, settings
from templator.dev.demo.flow import DemoFailed, run_demo
from templator.kit.uow import unit_of_work
from templator.user.schemas import UserCreate
from templator.user.service import UserService

ID_IN_PATH = re.compile(r"/[a-z][0-9a-z]{24}(?=/|$)")


async def _bootstrap() -> tuple[str, str]:
    email = f"demo-{int(time.time())}@example.com"
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        user = await UserService(session, conns.cache).create(
            UserCreate(email=email, name="Demo designer"), origin=CLI
        )
        token = await TokenService(session, conns.cache).create(
            user.id, TokenCreate(name="demo", expires_days=1), origin=CLI
        )
    return email, token.token


def _short(path: str) -> str:
    return ID_IN_PATH.sub("/{id}", path).removeprefix("/api/v1")


def wait_for_api(base: str, *, timeout: float) -> bool:
    """True once the API answers /health."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def run_and_print(base: str) -> None:
    """Bootstrap a demo user, run the flow over HTTP, print the table and the URL."""
    email, token = run(_bootstrap())
    console.print(f"demo user {email} (token created through the CLI, everything else over HTTP)")
    try:
        result = run_demo(base, token)
    except DemoFailed as exc:
        fail(str(exc), code=1)
        return
    table = Table(title="Templator demo: one session end to end (/api/v1)")
    for column in ("step", "call", "status", "ms", "detail"):
        table.add_column(column)
    for step in result.steps:
        call = f"{step.method} {_short(step.path)}"
        table.add_row(step.name, call, str(step.status), f"{step.ms:.1f}", step.note)
    console.print(table)
    console.print(f"[bold]template[/] {result.template_id}")
    console.print("[bold]download the HubSpot module[/] (link valid 1 hour):")
    print(result.download_url, flush=True)


def demo(
    url: str | None = typer.Option(None, help="API base URL (default http://API_HOST:API_PORT)."),
) -> None:
    """Create a user and project, upload a design, run the phases with logs, complete,
    make a template, edit it twice, export the HubSpot module and print its URL."""
    conf = settings()
    base = url or f"http://{conf.api_host}:{conf.api_port}"
    if not wait_for_api(base, timeout=3):
        fail(f"no API answers at {base}: start it with `templator up` (or pass --url)", code=1)
    run_and_print(base)

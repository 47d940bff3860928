"""`templator up`: the whole platform on one machine with one command."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import threading
from types import FrameType

import typer

from templator.cli.context import console, fail, settings
from templator.cli.db import run_seed
from templator.cli.demo import run_and_print, wait_for_api
from templator.cli.serve import run_server
from templator.config import get_settings
from templator.dev.localstack import LocalStack, LocalStackError
from templator.dev.localstack.supervisor import Supervisor
from templator.dev.seed import SeedPlan
from templator.migrations import runner

DEMO = SeedPlan(users=5, projects_per_user=2, sessions=40, templates=20, logs_per_session=15)


def _database_is_empty(url: str) -> bool:
    """Whether the database has no user yet (demo data is loaded on a first start only)."""
    return asyncio.run(_has_no_users(url))


async def _has_no_users(url: str) -> bool:
    from templator import postgres
    from templator.config import ProcessRole
    from templator.user.repository import UserRepository

    engine = postgres.create_engine(settings(), url=url, role=ProcessRole.CLI)
    try:
        async with postgres.create_sessionmaker(engine)() as session:
            return not await UserRepository(session).any_exists()
    finally:
        await engine.dispose()


def _masked(url: str) -> str:
    """`url` with its password shown as ***."""
    return re.sub(r"://([^:@/]*):[^@/]+@", r"://\1:***@", url)


def _prepare(database_url: str, *, seed_demo: bool) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    before = runner.current_revision(database_url)
    runner.upgrade(database_url)
    after = runner.current_revision(database_url)
    console.print(
        f"[green]✓[/] schema at {after}"
        + ("" if before == after else f" (was {before or 'empty'})")
    )
    if seed_demo and _database_is_empty(database_url):
        console.print("loading demo data (first start)")
        run_seed(database_url, DEMO, quiet=True)
        console.print("[green]✓[/] demo data loaded")


def _demo_when_ready(host: str, port: int) -> None:
    """Run the demo in a thread once the API answers (the server keeps the main thread)."""
    base = f"http://{host}:{port}"

    def go() -> None:
        if wait_for_api(base, timeout=60):
            try:
                run_and_print(base)
            except (typer.Exit, Exception) as exc:  # the server keeps serving either way
                console.print(f"[red]demo failed:[/] {exc}")

    threading.Thread(target=go, name="templator-demo", daemon=True).start()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM's handler in `templator up`: leave by SystemExit, so cleanup runs."""
    raise SystemExit(128 + signum)


def up(
    host: str | None = typer.Option(None, help="Interface for the API (default API_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="API port (default API_PORT)."),
    workers: int | None = typer.Option(None, min=1, max=64, help="API worker processes."),
    seed_demo: bool = typer.Option(True, help="Load demo data when the database is empty."),
    demo: bool = typer.Option(
        False, "--demo", help="Once serving, run `templator demo` against it."
    ),
) -> None:
    """Start the local stack (unless URLs are set), migrate, seed, serve until Ctrl-C.

    With DATABASE_URL and REDIS_URL unset, a private PostgreSQL, Redis and SeaweedFS start
    under VAR_DIR on free ports, with generated passwords kept in VAR_DIR/secrets (0600);
    demo data loads on first start; a server that dies is restarted (with backoff) on the
    same port; Ctrl-C stops them all.
    """
    conf = settings()
    host = host or conf.api_host
    port = port or conf.api_port
    workers = workers or conf.api_workers
    if conf.database_url and conf.redis_url:
        console.print("using the configured DATABASE_URL and REDIS_URL; starting no servers")
        _prepare(conf.database_url, seed_demo=seed_demo)
        run_server(host=host, port=port, workers=workers)
        return

    def event(name: str, message: str) -> None:
        console.print(f"[dim]{name:>9}[/] {message}")

    # SIGTERM unwinds like Ctrl-C, through the `finally` that stops every server: uvicorn
    # re-raises the signal it caught once it has shut down, which with the default
    # handler ended the process there and left the servers and stack.json behind.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    stack = LocalStack(conf, on_event=event)
    try:
        urls = stack.start()
    except LocalStackError as exc:
        fail(str(exc), code=1)
        return
    supervisor = Supervisor(stack, on_event=event)
    supervisor.start()
    try:
        # Workers (and every command run meanwhile) read the stores from the environment.
        os.environ["DATABASE_URL"] = urls.database_url
        os.environ["REDIS_URL"] = urls.redis_url
        if "S3_ENDPOINT_URL" not in os.environ and conf.s3_endpoint_url is None:
            os.environ["S3_ENDPOINT_URL"] = urls.s3_endpoint_url
            if urls.s3_keys is not None:  # the stack's own keys go with its object store
                os.environ["S3_ACCESS_KEY"], os.environ["S3_SECRET_KEY"] = urls.s3_keys
        admin_url = urls.admin_database_url or urls.database_url
        os.environ.setdefault("DATABASE_ADMIN_URL", admin_url)
        if urls.cache_signing_key_file is not None:
            os.environ.setdefault("CACHE_SIGNING_KEY_FILE", str(urls.cache_signing_key_file))
        get_settings.cache_clear()
        _prepare(admin_url, seed_demo=seed_demo)
        console.print(
            f"[bold green]Templator is up[/]: API http://{host}:{port}  docs http://{host}:{port}/docs"
        )
        for name, url in (("PostgreSQL", urls.database_url), ("Redis", urls.redis_url)):
            console.print(f"  {name:<10} {_masked(url)}")
        console.print(f"  {'S3':<10} {urls.s3_endpoint_url}")
        console.print(
            f"  {'secrets':<10} {stack.secrets.dir}/ (mode 0600: PostgreSQL owner and app "
            "role passwords, Redis password, S3 keys, cache signing key)",
            highlight=False,
        )
        console.print("  Ctrl-C stops everything.")
        if demo:
            _demo_when_ready(host, port)
        run_server(host=host, port=port, workers=workers)
    finally:
        supervisor.stop()
        stack.stop()
        console.print("stopped")

"""`templator worker`: the reference worker — claims ready sessions and runs them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
from pathlib import Path

import typer

from templator.cli.context import console, fail, run, settings

TOKEN_ENV = "TEMPLATOR_WORKER_TOKEN"
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]+")


def default_name() -> str:
    """host:pid, in the characters a worker name may hold."""
    return _UNSAFE.sub("-", f"{socket.gethostname()}:{os.getpid()}")[:100]


async def _stack_token() -> str:
    from templator.cli.context import connections
    from templator.dev.demo.credentials import worker_token

    async with connections() as conns:
        return await worker_token(conns, conns.settings.var_dir)


def worker_credential(token_file: Path | None) -> str:
    """The worker's token: TEMPLATOR_WORKER_TOKEN, else `token_file`, else (on a running
    `templator up` stack) the stack's own worker credential, found or made."""
    from templator.cli.stack import find_local_stack

    if token := os.environ.get(TOKEN_ENV, "").strip():
        return token
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            fail(f"cannot read the token file {token_file}: {exc.strerror}")
        if not token:
            fail(f"the token file {token_file} is empty")
        return token
    if find_local_stack(settings().var_dir) is not None:
        return run(_stack_token())
    fail(
        f"no worker credential: set {TOKEN_ENV} or pass --token-file (an ADMIN makes one with "
        "`templator token create --user ADMIN_EMAIL --scope worker`), or run `templator up`"
    )
    raise AssertionError("unreachable")


async def _work(
    base: str,
    token: str,
    *,
    name: str,
    concurrency: int,
    lease_seconds: int,
    model_seconds: float,
    quiet: bool,
) -> dict[str, int]:
    from templator.client import AsyncClient
    from templator.client.reference import reference_worker
    from templator.client.worker import run_until_signalled

    def report(session_id: str, outcome: str) -> None:
        if not quiet:
            console.print(f"{name} {session_id} {outcome}", highlight=False)

    async with AsyncClient(base, token) as client:
        worker = reference_worker(
            client,
            name=name,
            concurrency=concurrency,
            lease_seconds=lease_seconds,
            model_seconds=model_seconds,
            on_outcome=report,
        )
        stats = await run_until_signalled(worker)
    return dict(vars(stats))


def worker(
    url: str | None = typer.Option(None, help="API base URL (default http://API_HOST:API_PORT)."),
    concurrency: int = typer.Option(4, min=1, max=50, help="Sessions worked at once."),
    name: str | None = typer.Option(
        None, help="This worker's name in the sessions' attempts (default host:pid)."
    ),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        envvar="TEMPLATOR_WORKER_TOKEN_FILE",
        help=f"A file holding the worker token (else {TOKEN_ENV}, else the local stack's).",
    ),
    lease_seconds: int = typer.Option(
        60, min=5, max=3600, help="Lease length; heartbeats every third of it."
    ),
    model_seconds: float = typer.Option(
        0.0, min=0, max=600, help="Seconds each stand-in model phase takes (0: none)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per session."),
    as_json: bool = typer.Option(False, "--json", help="Print the final counts as JSON."),
) -> None:
    """Claim ready sessions and run them: sections detected from the HTML design (real),
    the model phases as marked stand-ins, then complete and make the template. SIGTERM or
    Ctrl-C: finish (10 s) or release the sessions in hand, then exit."""
    from templator.cli.demo import wait_for_api

    conf = settings()
    base = url or f"http://{conf.api_host}:{conf.api_port}"
    if not wait_for_api(base, timeout=5):
        fail(f"no API answers at {base}: start it with `templator up` (or pass --url)", code=1)
    token = worker_credential(token_file)
    me = name or default_name()
    if not quiet and not as_json:
        console.print(f"worker {me} on {base}: {concurrency} at once (SIGTERM/Ctrl-C to stop)")
    from templator.client import ApiError

    try:
        counts = asyncio.run(
            _work(
                base,
                token,
                name=me,
                concurrency=concurrency,
                lease_seconds=lease_seconds,
                model_seconds=model_seconds,
                quiet=quiet or as_json,
            )
        )
    except ApiError as exc:
        fail(f"the API refused this worker: {exc}", code=1)
        return
    if as_json:
        print(json.dumps({"worker": me, **counts}))
    else:
        console.print(", ".join(f"{k} {v}" for k, v in counts.items()), highlight=False)

"""`templator serve`: the API on uvicorn against configured (or local-stack) stores."""

from __future__ import annotations

import os
import secrets

import typer
import uvicorn

from templator.cli.context import settings
from templator.config import Settings


def run_server(
    *, host: str, port: int, workers: int, log_level: str = "info", access_log: bool = True
) -> None:
    """Serve `templator.app:create_app` until interrupted."""
    uvicorn.run(
        "templator.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        proxy_headers=True,
        server_header=False,
        # A spawned worker answers the supervisor's ping only once it has imported the
        # app; on a loaded machine that takes longer than uvicorn's 5 s, and a worker
        # killed as "hung" before it ever started is restarted into the same fate.
        timeout_worker_healthcheck=60,
    )


def share_signing_key(conf: Settings) -> None:
    """Give this server's workers one cache signing key when none is configured (nor a
    local stack's): without it each worker would refuse the others' cached values."""
    if conf.cache_signing_key is not None or conf.cache_signing_key_file is not None:
        return
    from templator.localstack import discover_running_stack

    stack = discover_running_stack(conf.var_dir)
    if stack is None or stack.cache_signing_key_file is None:
        os.environ["CACHE_SIGNING_KEY"] = secrets.token_urlsafe(32)


def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default API_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default API_PORT)."),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes (default API_WORKERS)."
    ),
    access_log: bool = typer.Option(
        True, help="Log every request (uvicorn's access log, to stderr)."
    ),
) -> None:
    """Serve the REST API (OpenAPI docs at /docs) until Ctrl-C."""
    conf = settings()
    share_signing_key(conf)
    run_server(
        host=host or conf.api_host,
        port=port or conf.api_port,
        workers=workers or conf.api_workers,
        access_log=access_log,
    )

"""`templator serve`: the API on uvicorn against configured (or local-stack) stores."""

from __future__ import annotations

import os
import secrets

import typer
import uvicorn

from templator.cli.context import settings
from templator.config import Settings


def run_server(
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str = "info",
    access_log: bool = True,
    worker_healthcheck_timeout: int | None = None,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Serve the API (`templator.cli.asgi:create_app`) until interrupted."""
    if forwarded_allow_ips is not None:
        # The app reads it from its settings (its proxy-headers layer), in every worker.
        os.environ["API_FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    conf = settings()
    from templator.cli.http_protocol import bounded_protocol
    from templator.monitoring.multiproc import multiprocess_mode

    # Several workers share their metrics through files (prometheus-client's multiprocess
    # mode); the folder is set up before they start so each one inherits it.
    with multiprocess_mode(workers, var_dir=conf.var_dir):
        uvicorn.run(
            "templator.cli.asgi:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            # The app trusts proxy headers itself, from API_FORWARDED_ALLOW_IPS only
            # (uvicorn's own default trusts every local process: issue #21).
            proxy_headers=False,
            timeout_worker_healthcheck=worker_healthcheck_timeout
            or conf.api_worker_healthcheck_timeout,
            server_header=False,
            http=bounded_protocol(conf),
            limit_concurrency=conf.api_max_requests,
            backlog=conf.api_backlog,
            timeout_keep_alive=conf.api_keep_alive_timeout,
            h11_max_incomplete_event_size=conf.api_max_header_bytes,
        )


def share_signing_key(conf: Settings) -> None:
    """Give this server's workers one cache signing key when none is configured (nor a
    local stack's): without it each worker would refuse the others' cached values."""
    if conf.cache_signing_key is not None or conf.cache_signing_key_file is not None:
        return
    from templator.dev.localstack import discover_running_stack

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
    worker_healthcheck_timeout: int | None = typer.Option(
        None,
        min=1,
        max=600,
        help="Seconds a worker may take to start and to answer the supervisor's liveness "
        "check before it is replaced (default API_WORKER_HEALTHCHECK_TIMEOUT).",
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        help="Proxies whose X-Forwarded-* headers are trusted, comma-separated "
        "(default API_FORWARDED_ALLOW_IPS; none unless set).",
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
        worker_healthcheck_timeout=worker_healthcheck_timeout,
        forwarded_allow_ips=forwarded_allow_ips,
    )

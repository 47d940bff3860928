"""`templator serve`: the API on uvicorn against configured (or local-stack) stores."""

from __future__ import annotations

import typer
import uvicorn

from templator.cli.context import settings


def run_server(
    *, host: str, port: int, workers: int, log_level: str = "info", access_log: bool = True
) -> None:
    """Serve `templator.app:create_app` until interrupted."""
    from templator.monitoring.multiproc import multiprocess_mode

    # Several workers share their metrics through files (prometheus-client's multiprocess
    # mode); the folder is set up before they start so each one inherits it.
    with multiprocess_mode(workers, var_dir=settings().var_dir):
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
            # uvicorn kills a worker that does not answer its health check within this
            # many seconds; importing the app takes longer than the default 5 s on a
            # loaded machine, which killed and restarted every worker in a loop.
            timeout_worker_healthcheck=60,
        )


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
    run_server(
        host=host or conf.api_host,
        port=port or conf.api_port,
        workers=workers or conf.api_workers,
        access_log=access_log,
    )

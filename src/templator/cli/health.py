"""`templator health`: each component's status, latency and error.

It probes with one-shot light clients (health/probes.py) and imports nothing else
heavy, so it answers quickly enough for a watch loop or a cron job.
"""

from __future__ import annotations

import json

import typer

from templator.cli.context import console, run, settings
from templator.cli.stack import find_local_stack
from templator.health.checks import HealthReport, Status, run_checks
from templator.health.probes import store_probes
from templator.store_urls import resolve_urls


async def _check(timeout: float) -> HealthReport:
    conf = settings()
    return await run_checks(
        store_probes(conf, resolve_urls(conf, find_stack=find_local_stack)), timeout=timeout
    )


def health(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    timeout: float = typer.Option(3.0, min=0.1, max=60, help="Seconds each check may take."),
) -> None:
    """Check every store on its own; exit 1 when PostgreSQL is down.

    Redis (a cache) or the object store (uploads) down is `degraded`: the API still
    serves, as its /health/ready says with 200; the exit code is 0 and the table says
    which component is down.
    """
    report = run(_check(timeout))
    if as_json:
        print(json.dumps(report.as_dict(), default=str))
    else:
        from rich.table import Table

        table = Table(title="Templator health")
        for column in ("component", "needed for", "status", "latency", "target", "detail"):
            table.add_column(column)
        for c in report.components:
            style = "green" if c.status is Status.UP else "bold red"
            detail = c.error or ", ".join(
                f"{k}={v}" for k, v in c.details.items() if not isinstance(v, dict)
            )
            table.add_row(
                c.name,
                c.role.value,
                f"[{style}]{c.status.value}[/]",
                f"{c.latency_ms:.1f} ms",
                c.target,
                detail,
            )
        console.print(table)
        overall = {Status.UP: "green", Status.DEGRADED: "yellow", Status.DOWN: "bold red"}
        console.print(f"status: [{overall[report.status]}]{report.status.value}[/]")
    if not report.serving:
        raise typer.Exit(1)

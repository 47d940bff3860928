"""`templator demo`: the web app's calls, then workers processing the sessions, over HTTP."""

from __future__ import annotations

import time

import httpx
import typer

from templator.cli.context import console, fail, run, settings


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


async def _credentials(workers: int) -> tuple[str, str, str | None]:
    from templator.cli.context import connections
    from templator.dev.demo.credentials import demo_user, worker_token

    async with connections() as conns:
        email, token = await demo_user(conns)
        worker = await worker_token(conns, conns.settings.var_dir) if workers else None
    return email, token, worker


def run_and_print(base: str, *, sessions: int = 3, workers: int = 2, concurrency: int = 4) -> None:
    """Make the demo's credentials, run the story over HTTP and print what happened."""
    from rich.progress import Progress
    from rich.table import Table

    from templator.dev.demo.flow import DemoFailed, run_story

    email, token, worker = run(_credentials(workers))
    console.print(
        f"demo user {email}; {sessions} session(s) through {workers} worker process(es) "
        "(credentials made through the CLI, everything else over HTTP)"
    )
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("sessions final", total=sessions)
            result = run_story(
                base,
                token,
                worker_token=worker,
                sessions=sessions,
                workers=workers,
                concurrency=concurrency,
                on_progress=lambda done: progress.update(task, completed=done),
            )
    except DemoFailed as exc:
        fail(str(exc), code=1)
        return
    calls = Table(title="The web app's side (templator.client)")
    for column in ("call", "ms", "session"):
        calls.add_column(column)
    for step in result.steps:
        calls.add_row(step.name, f"{step.ms:.1f}", step.note)
    console.print(calls)
    table = Table(title=f"What happened to each session ({result.seconds:.1f} s in all)")
    for column in (
        "session",
        "design",
        "status",
        "attempts (worker: outcome)",
        "sections",
        "template",
    ):
        table.add_column(column)
    for report in result.sessions:
        table.add_row(
            report.id,
            report.upload,
            report.status,
            "\n".join(report.workers) or "-",
            " ".join(report.sections) or "-",
            report.template_id or "-",
        )
    console.print(table)
    for counts in result.workers:
        console.print(", ".join(f"{k} {v}" for k, v in counts.items()), highlight=False)
    if not workers:
        console.print("no workers: the sessions are ready; run `templator worker` to work them")
    if result.download_url:
        console.print("[bold]download the first HubSpot module[/] (link valid 1 hour):")
        print(result.download_url, flush=True)


def demo(
    url: str | None = typer.Option(None, help="API base URL (default http://API_HOST:API_PORT)."),
    sessions: int = typer.Option(3, "--sessions", "-n", min=1, max=10_000, help="Sessions."),
    workers: int = typer.Option(
        2, "--workers", "-k", min=0, max=64, help="`templator worker` processes (0: none)."
    ),
    concurrency: int = typer.Option(4, min=1, max=50, help="Sessions each worker runs at once."),
) -> None:
    """The whole story: as the web app, create a project and N draft sessions, upload each
    design (the first straight to the store) and submit it; then K `templator worker`
    processes claim the sessions, detect sections, run the stand-in model phases and make
    the templates; print what happened to each session and the first module's URL."""
    conf = settings()
    base = url or f"http://{conf.api_host}:{conf.api_port}"
    if not wait_for_api(base, timeout=3):
        fail(f"no API answers at {base}: start it with `templator up` (or pass --url)", code=1)
    run_and_print(base, sessions=sessions, workers=workers, concurrency=concurrency)

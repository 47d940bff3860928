"""`templator db`: migrations, seed data, reset."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from templator.cli.context import confirm_destructive, console, database, fail, run
from templator.cli.logs import prune_logs
from templator.cli.maintenance import optimize, top
from templator.migrations import runner

if TYPE_CHECKING:
    from templator.dev.seed import SeedPlan

app = typer.Typer(no_args_is_help=True)
app.command("prune-logs")(prune_logs)
app.command("optimize")(optimize)
app.command("top")(top)


async def _verified_url() -> str:
    # Schema changes and bulk loads run as the owner (DATABASE_ADMIN_URL), when one is set.
    async with database(admin=True) as db:
        return db.url


def _checked_url() -> str:
    """The database URL, after checking the server answers (clear error otherwise).

    PostgreSQL alone: these commands run whether Redis is configured, up or not."""
    url = run(_verified_url())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return url


@app.command()
def migrate(
    revision: str = typer.Argument("head", help="Revision to migrate up to."),
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    url = _checked_url()
    before = runner.current_revision(url)
    runner.upgrade(url, revision)
    after = runner.current_revision(url)
    console.print(f"database at {after} (was {before or 'empty'})")


@app.command()
def downgrade(
    revision: str = typer.Argument(..., help='Revision to go down to, or "base" for empty.'),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Undo migrations down to REVISION; data in dropped tables is lost."""
    url = _checked_url()
    database = make_url(url).database or ""
    confirm_destructive(target=database, action=f"downgrade {database} to {revision}", yes=yes)
    runner.downgrade(url, revision)
    console.print(f"database at {runner.current_revision(url) or 'base (empty)'}")


@app.command()
def current() -> None:
    """Show the database's revision and the newest one available."""
    url = _checked_url()
    console.print(f"current: {runner.current_revision(url) or 'empty'}")
    console.print(f"head:    {runner.head_revision()}")


def run_seed(url: str, plan: SeedPlan, *, quiet: bool = False) -> dict[str, int]:
    """Seed with a progress bar per table; return the row counts."""
    from templator.dev.seed import seed_database

    totals = plan.total_rows()
    columns = (
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=quiet, transient=False) as bar:
        tasks = {stage: bar.add_task(stage, total=total) for stage, total in totals.items()}

        def advance(stage: str, rows: int) -> None:
            bar.advance(tasks[stage], rows)

        report = seed_database(url, plan, progress=advance)
        for stage, count in report.rows.items():
            bar.update(tasks[stage], total=count, completed=count)
    if not quiet:
        console.print(f"seeded {sum(report.rows.values()):,} rows in {report.seconds:.1f}s")
    return report.rows


@app.command()
def seed(
    users: int = typer.Option(10, min=1, help="Users to create."),
    projects_per_user: int = typer.Option(3, min=1, help="Projects per user."),
    sessions: int = typer.Option(100, min=0, help="AI sessions, in every status."),
    templates: int = typer.Option(50, min=0, help="Templates, each with 1..3 versions."),
    logs_per_session: int = typer.Option(20, min=0, help="Processing log lines per session."),
    random_seed: int | None = typer.Option(None, help="Seed for reproducible data."),
    as_json: bool = typer.Option(False, "--json", help="Print the row counts as JSON."),
) -> None:
    """Load a realistic dataset of any size (COPY, one transaction: all or nothing)."""
    url = _checked_url()
    if runner.current_revision(url) != runner.head_revision():
        fail("the database is not migrated to the newest revision: run `templator db migrate`")
    from templator.dev.seed import SeedPlan

    plan = SeedPlan(
        users=users,
        projects_per_user=projects_per_user,
        sessions=sessions,
        templates=templates,
        logs_per_session=logs_per_session,
        random_seed=random_seed,
    )
    rows = run_seed(url, plan, quiet=as_json)
    if as_json:
        print(json.dumps(rows))


@app.command()
def reset(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    seed_demo: bool = typer.Option(False, "--seed", help="Load the small demo dataset after."),
) -> None:
    """Drop every table and rebuild the schema from the migrations. All data is lost."""
    url = _checked_url()
    database = make_url(url).database or ""
    confirm_destructive(
        target=database, action=f"erase every row in database {database!r}", yes=yes
    )
    runner.downgrade(url, "base")
    runner.upgrade(url)
    console.print(f"database {database} rebuilt at {runner.current_revision(url)}")
    if seed_demo:
        from templator.dev.seed import SeedPlan

        run_seed(url, SeedPlan())

"""`templator db prune-logs`: the processing-log retention policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from templator.cli.backup import parse_age
from templator.cli.context import confirm_destructive, console, database, run
from templator.processing_log.service import count_older_than, prune_older_than


async def _count(cutoff: datetime) -> tuple[int, str]:
    async with database() as db:
        return await count_older_than(db.sessionmaker, cutoff), make_url(db.url).database or ""


async def _prune(cutoff: datetime, batch_size: int, total: int, quiet: bool) -> int:
    async with database() as db:
        with Progress(
            SpinnerColumn(),
            TextColumn("deleting log lines"),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
        ) as bar:
            task = bar.add_task("prune", total=total)
            return await prune_older_than(
                db.sessionmaker,
                cutoff,
                batch_size=batch_size,
                on_batch=lambda n: bar.advance(task, n),
            )


def prune_logs(
    older_than: str = typer.Option("30d", help="Delete lines older than this: 30d, 12h, 90m."),
    batch_size: int = typer.Option(10_000, min=1, max=100_000, help="Rows per short transaction."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Apply the log retention policy in batches that never hold long locks."""
    cutoff = datetime.now(UTC) - parse_age(older_than)
    total, database = run(_count(cutoff))
    if total == 0:
        print(json.dumps({"deleted": 0})) if as_json else console.print("nothing to prune")
        return
    confirm_destructive(
        target=database, action=f"delete {total:,} log lines older than {older_than}", yes=yes
    )
    deleted = run(_prune(cutoff, batch_size, total, as_json))
    if as_json:
        print(json.dumps({"deleted": deleted, "cutoff": cutoff.isoformat()}))
    else:
        console.print(f"deleted {deleted:,} log lines older than {cutoff:%Y-%m-%d %H:%M} UTC")

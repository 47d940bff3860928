"""`templator db optimize`, `templator db top` and `templator cache sweep`.

Heavy modules (SQLAlchemy, psycopg, Rich's progress) are imported inside the commands, so
`templator --help` does not pay for them.
"""

from __future__ import annotations

import json
from typing import Any

import typer

cache_app = typer.Typer(no_args_is_help=True)


async def _plan(tables: list[str] | None) -> list[dict[str, Any]]:
    from templator.cli.context import connections
    from templator.monitoring.maintenance import vacuum_plan

    async with connections() as conns:
        await conns.verify_database()
        return await vacuum_plan(conns.urls.database_url, role=conns.role, tables=tables)


async def _vacuum(plan: list[dict[str, Any]]) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from templator.cli.context import connections, console
    from templator.monitoring.maintenance import vacuum_analyze

    with Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks = {
            row["table"]: progress.add_task(row["table"], total=1, state="waiting") for row in plan
        }

        def done(name: str, seconds: float) -> None:
            progress.update(tasks[name], completed=1, state=f"done in {seconds:.2f} s")

        async with connections() as conns:
            for row in plan:  # one at a time, so the bar shows the table being worked on
                progress.update(tasks[row["table"]], state="VACUUM (ANALYZE)…")
                await vacuum_analyze(conns.engine, tables=[row["table"]], on_table=done)


async def _prune_words(*, dry_run: bool) -> int:
    from templator.cli.context import connections
    from templator.monitoring.maintenance import prune_search_words

    async with connections() as conns:
        return await prune_search_words(conns.engine, dry_run=dry_run)


def optimize(
    table: list[str] = typer.Option(
        None, "--table", "-t", help="Only this table (repeat for more); default: every table."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be vacuumed and why; change nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """VACUUM (ANALYZE) every table, one at a time, with a progress bar per table; then
    remove the search vocabulary's words that no template contains any more."""
    from rich.table import Table

    from templator.cli.context import console, run

    plan = run(_plan(table or None))
    if not as_json:
        view = Table(title="VACUUM (ANALYZE) plan" + (" (dry run: nothing changed)" * dry_run))
        for column in ("table", "rows", "dead rows", "size", "why"):
            view.add_column(column, justify="left" if column in ("table", "why") else "right")
        for row in plan:
            view.add_row(
                row["table"],
                f"{int(row['n_live_tup']):,}",
                f"{int(row['n_dead_tup']):,}",
                f"{int(row['size_bytes']) / 1024:,.0f} KiB",
                row["reason"],
            )
        console.print(view)
    if not dry_run:
        run(_vacuum(plan))
        if not as_json:
            console.print(f"vacuumed and analyzed {len(plan)} table(s)")
    stale = run(_prune_words(dry_run=dry_run)) if not table or "search_words" in table else None
    if as_json:
        words = None if stale is None else {"stale": stale, "removed": not dry_run}
        print(json.dumps({"dry_run": dry_run, "tables": plan, "search_words": words}, default=str))
    elif stale is not None:
        verb = "would remove" if dry_run else "removed"
        console.print(f"search vocabulary: {verb} {stale:,} word(s) no template contains")


async def _top(limit: int) -> list[dict[str, Any]]:
    from templator.cli.context import connections
    from templator.monitoring.stores import MetricsConnection, top_statements

    async with connections() as conns:
        await conns.verify_database()
        conn = MetricsConnection(conns.urls.database_url, role=conns.role, timeout=10)
        try:
            return await top_statements(conn, limit=limit)
        finally:
            await conn.close()


def top(
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=500, help="How many statements."),
    width: int = typer.Option(90, min=20, max=10_000, help="Characters of each statement shown."),
    as_json: bool = typer.Option(False, "--json", help="Print the statements as JSON."),
) -> None:
    """The heaviest statements by total time (pg_stat_statements): calls, time, rows."""
    from rich.table import Table

    from templator.cli.context import console, fail, run
    from templator.monitoring.stores import StatementsMissing

    try:
        rows = run(_top(limit))
    except StatementsMissing as exc:
        fail(str(exc), code=1)
        return
    if as_json:
        print(json.dumps(rows, default=str))
        return
    view = Table(title=f"Top {limit} statements by total time (pg_stat_statements)")
    for column in ("calls", "total ms", "mean ms", "rows", "statement"):
        view.add_column(column, justify="left" if column == "statement" else "right")
    for row in rows:
        statement = " ".join(str(row["query"]).split())
        view.add_row(
            f"{int(row['calls']):,}",
            f"{float(row['total_ms']):,.1f}",
            f"{float(row['mean_ms']):,.3f}",
            f"{int(row['rows']):,}",
            statement[:width] + ("…" if len(statement) > width else ""),
        )
    console.print(view)
    if not rows:
        console.print("no statements recorded yet (pg_stat_statements_reset() was called?)")


async def _sweep(*, batch: int, dry_run: bool) -> dict[str, Any]:
    from templator.cli.context import connections
    from templator.monitoring.maintenance import sweep_session_keys

    async with connections() as conns:
        await conns.verify_redis()
        result = await sweep_session_keys(
            conns.redis, conns.settings.cache_namespace, batch=batch, dry_run=dry_run
        )
        return {
            "namespace": conns.settings.cache_namespace,
            "scanned": result.scanned,
            "without_ttl": result.deleted,
            "deleted": 0 if dry_run else result.deleted,
            "dry_run": dry_run,
        }


@cache_app.command("sweep")
def sweep(
    batch: int = typer.Option(
        500, min=1, max=10_000, help="Keys per SCAN step and per delete script."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count the keys; delete nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Remove session keys left without a TTL, walking the keyspace with SCAN (never KEYS)."""
    from templator.cli.context import console, run

    result = run(_sweep(batch=batch, dry_run=dry_run))
    if as_json:
        print(json.dumps(result))
    elif dry_run:
        console.print(
            f"{result['scanned']:,} session keys scanned in {result['namespace']}; "
            f"{result['without_ttl']:,} have no TTL and would be removed (dry run)"
        )
    else:
        console.print(
            f"{result['scanned']:,} session keys scanned in {result['namespace']}; "
            f"{result['deleted']:,} without a TTL removed"
        )

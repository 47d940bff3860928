"""`templator storage`: the object store's consistency with the database."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from templator.cli.backup import parse_age
from templator.cli.context import confirm_destructive, connections, console, run
from templator.stored_object.service import Orphan, StoredObjectService

app = typer.Typer(no_args_is_help=True)


async def _orphans(grace: str) -> tuple[list[Orphan], str]:
    async with connections() as conns:
        store = conns.require_store()
        async with conns.sessionmaker() as session:
            service = StoredObjectService(session, conns.cache, store)
            return await service.find_orphans(grace=parse_age(grace)), store.bucket


async def _delete(keys: list[str]) -> int:
    async with connections() as conns:
        return conns.require_store().delete_many(keys)


@app.command()
def gc(
    grace: str = typer.Option("1h", help="Ignore objects younger than this (uploads in flight)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete the orphans (else only list)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List objects that no database row references; delete them with --yes."""
    orphans, bucket = run(_orphans(grace))
    if as_json and not yes:
        print(json.dumps([{"key": o.key, "size": o.size} for o in orphans]))
        return
    if not orphans:
        console.print(f"no orphaned objects in {bucket}")
        return
    table = Table(title=f"Objects no row references in {bucket}")
    table.add_column("key")
    table.add_column("size", justify="right")
    table.add_column("last modified")
    for orphan in orphans:
        table.add_row(orphan.key, f"{orphan.size:,}", f"{orphan.last_modified:%Y-%m-%d %H:%M}")
    if not as_json:
        console.print(table)
    if not yes:
        console.print("re-run with --yes to delete them")
        return
    confirm_destructive(target=bucket, action=f"delete {len(orphans)} objects", yes=yes)
    deleted = run(_delete([o.key for o in orphans]))
    if as_json:
        print(json.dumps({"deleted": deleted}))
    else:
        console.print(f"deleted {deleted} orphaned objects")

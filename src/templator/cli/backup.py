"""`templator backup`: create, verify, list, restore and prune backups of all three stores."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.engine import make_url

from templator.backup import service
from templator.cli.context import confirm_destructive, console, fail, settings
from templator.connections import resolve_urls
from templator.exceptions import TemplatorError

app = typer.Typer(no_args_is_help=True)

DIR_OPTION = typer.Option(None, "--dir", help="Backup folder (default: BACKUP_DIR).")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _reporter(bar: Progress) -> service.Progress:
    tasks: dict[str, TaskID] = {}

    def report(stage: str, advance: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        elif total is not None:
            bar.update(tasks[stage], total=total)
        bar.advance(tasks[stage], advance)

    return report


def parse_age(text: str) -> timedelta:
    """'7d', '12h', '30m' → timedelta; anything else is refused naming the format."""
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not match:
        raise typer.BadParameter("use a number followed by d, h or m, e.g. 7d")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


@app.command()
def create(
    directory: Path | None = DIR_OPTION,
    skip_redis: bool = typer.Option(False, help="Leave the cache out."),
    skip_objects: bool = typer.Option(False, help="Leave the object store out."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Back up PostgreSQL, Redis and the object store into a new verified folder."""
    conf = settings()
    root = directory or conf.backup_dir
    try:
        urls = resolve_urls(conf)
        with _progress() as bar:
            folder, manifest = service.create_backup(
                conf,
                urls,
                root=root,
                include_redis=not skip_redis,
                include_objects=not skip_objects,
                progress=_reporter(bar),
            )
    except TemplatorError as exc:
        fail(exc.message, code=1)
        return
    if as_json:
        print(
            json.dumps(
                {"path": str(folder), "seconds": manifest.seconds, "files": len(manifest.files)}
            )
        )
    else:
        size = sum(f.size for f in manifest.files)
        console.print(
            f"backup {manifest.name}: {size / 1e6:.1f} MB in {manifest.seconds:.1f}s → {folder}"
        )


@app.command("list")
def list_(
    directory: Path | None = DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List complete backups, newest first."""
    root = directory or settings().backup_dir
    manifests = service.list_backups(root)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "created_at": m.created_at,
                        "bytes": sum(f.size for f in m.files),
                    }
                    for m in manifests
                ]
            )
        )
        return
    table = Table(title=f"Backups in {root}")
    for column in ("name", "created", "size", "db revision", "redis keys", "objects"):
        table.add_column(column)
    for m in manifests:
        table.add_row(
            m.name,
            m.created_at,
            f"{sum(f.size for f in m.files) / 1e6:.1f} MB",
            str(m.database.get("server_major", "")),
            str(m.redis.get("keys", "-")),
            str(m.objects.get("objects", "-")),
        )
    console.print(table)


@app.command()
def verify(
    name: str = typer.Argument(..., help="Backup name (see `backup list`) or folder."),
    directory: Path | None = DIR_OPTION,
) -> None:
    """Check every file of a backup against its manifest checksum."""
    root = directory or settings().backup_dir
    try:
        folder = service.resolve_backup(root, name)
        with _progress() as bar:
            manifest = service.verify_backup(folder, progress=_reporter(bar))
    except TemplatorError as exc:
        fail(exc.message, code=1)
        return
    console.print(f"{manifest.name}: {len(manifest.files)} files intact")


@app.command()
def restore(
    name: str = typer.Argument(..., help="Backup name (see `backup list`) or folder."),
    directory: Path | None = DIR_OPTION,
    skip_redis: bool = typer.Option(False, help="Do not restore the cache."),
    skip_objects: bool = typer.Option(False, help="Do not restore objects."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Replace the database's contents (and cache keys, objects) with a backup."""
    conf = settings()
    root = directory or conf.backup_dir
    try:
        urls = resolve_urls(conf)
        folder = service.resolve_backup(root, name)
        database = make_url(urls.database_url).database or ""
        confirm_destructive(
            target=database,
            action=f"replace database {database!r} with backup {folder.name}",
            yes=yes,
        )
        with _progress() as bar:
            service.restore_backup(
                conf,
                urls,
                folder,
                include_redis=not skip_redis,
                include_objects=not skip_objects,
                progress=_reporter(bar),
            )
    except TemplatorError as exc:
        fail(exc.message, code=1)
        return
    console.print(f"restored {folder.name} into {database}")


@app.command()
def prune(
    older_than: str = typer.Option("7d", help="Age of backups to delete: 7d, 12h, 30m."),
    keep: int = typer.Option(1, min=0, help="Always keep this many newest backups."),
    directory: Path | None = DIR_OPTION,
    dry_run: bool = typer.Option(False, help="Only list what would be deleted."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete old backups (and leftovers of interrupted ones)."""
    root = directory or settings().backup_dir
    age = parse_age(older_than)
    doomed = service.prune_backups(root, older_than=age, keep=keep, dry_run=True)
    if not doomed:
        console.print("nothing to prune")
        return
    for name in doomed:
        console.print(f"  {name}")
    if dry_run:
        return
    confirm_destructive(
        target=root.name, action=f"delete {len(doomed)} backup(s) in {root}", yes=yes
    )
    service.prune_backups(root, older_than=age, keep=keep)
    console.print(f"deleted {len(doomed)} backup(s)")

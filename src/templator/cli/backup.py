"""`templator backup`: keygen, create, list, verify [--drill], restore, prune, status."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from templator.backup import catalog, retention
from templator.backup.catalog import Repo
from templator.backup.create import create_backup, load_key
from templator.backup.crypto import BackupKey, generate_key_file
from templator.backup.pgbackrest import Pitr, for_server
from templator.backup.restore import RestoreReport, drill
from templator.backup.restore_flow import RestoreRequest, run_restore
from templator.backup.set_store import open_repository
from templator.cli.context import confirm_destructive, console, err_console, fail, settings
from templator.cli.stack import find_local_stack
from templator.config import Settings
from templator.connections import StoreUrls, resolve_urls
from templator.exceptions import TemplatorError

app = typer.Typer(no_args_is_help=True)
T = TypeVar("T")

REPO_OPTION = typer.Option(
    None, "--repository", "--dir", help="Folder or s3://bucket/prefix (default: BACKUP_REPOSITORY)."
)
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON (no progress bars).")
WAIT_OPTION = typer.Option(
    0.0, "--wait", min=0, help="Seconds to wait for another backup command's lock, then refuse."
)
BYTE_STAGES = {"postgres", "seal", "objects", "verify"}


class _Amount(ProgressColumn):
    """Bytes for byte stages, a count for the others."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()
        self._count = MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        column = self._bytes if task.fields.get("unit") == "bytes" else self._count
        rendered = column.render(task)
        return rendered if isinstance(rendered, Text) else Text(str(rendered))


@contextmanager
def _progress(quiet: bool) -> Iterator[catalog.Progress]:
    """A Rich bar per stage; `total=-1` from a stage means: done, complete the bar."""
    if quiet:
        yield catalog.no_progress
        return
    bar = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        _Amount(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def report(stage: str, advance: int, total: int | None) -> None:
        if stage not in tasks:
            unit = "bytes" if stage in BYTE_STAGES else "count"
            tasks[stage] = bar.add_task(
                stage, total=total if total and total > 0 else None, unit=unit
            )
        elif total == -1:
            bar.advance(tasks[stage], advance)
            done = bar.tasks[tasks[stage]].completed
            bar.update(tasks[stage], total=max(done, 1), completed=max(done, 1))
            return
        elif total is not None:
            bar.update(tasks[stage], total=total)
        if advance:
            bar.advance(tasks[stage], advance)

    with bar:
        yield report


def _guard(action: Callable[[], T]) -> T:
    """Run a command body; an expected failure is one line and exit 1, never a traceback."""
    try:
        return action()
    except TemplatorError as exc:
        fail(exc.message, code=1)
        raise  # unreachable: fail() exits
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), code=1)
        raise


def _setup(repository: str | None) -> tuple[Settings, Repo, BackupKey | None]:
    conf = settings()
    return conf, open_repository(conf, repository), load_key(conf)


def _as_owner(urls: StoreUrls) -> StoreUrls:
    """Dumps, restores and scratch databases run as the schema owner (DATABASE_ADMIN_URL,
    or the local stack's), not as the application role, which may not create databases."""
    if urls.admin_database_url is None:
        return urls
    return dataclasses.replace(urls, database_url=urls.admin_database_url)


def _urls(conf: Settings) -> StoreUrls:
    return _as_owner(resolve_urls(conf, find_stack=find_local_stack))


def parse_age(text: str) -> timedelta:
    """'7d', '12h', '30m' → timedelta; anything else is refused naming the format."""
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not match:
        raise typer.BadParameter("use a number followed by d, h or m, e.g. 7d")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _print(data: Any) -> None:
    print(json.dumps(data, default=str))


@app.command()
def keygen(
    output: Path = typer.Option(..., "--output", "-o", help="File to write the new key to (0600)."),
) -> None:
    """Write a new backup encryption key; point BACKUP_ENCRYPTION_KEY_FILE at it."""
    key = _guard(lambda: generate_key_file(output))
    console.print(f"wrote backup key {key.key_id} to {output} (mode 0600): keep a copy off-site")


def _pitr(conf: Settings, urls: StoreUrls, logical: bool) -> Pitr | None:
    return None if logical or not conf.backup_pitr else for_server(conf, urls)


@app.command()
def create(
    repository: str | None = REPO_OPTION,
    skip_redis: bool = typer.Option(False, help="Leave the cache out."),
    skip_objects: bool = typer.Option(False, help="Leave the object store out."),
    kind: str = typer.Option(
        "incr", "--type", help="pgBackRest base backup type: full, diff or incr."
    ),
    logical: bool = typer.Option(
        False, help="Use pg_dump even when pgBackRest manages the server."
    ),
    jobs: int | None = typer.Option(None, min=1, help="Parallel jobs (default: BACKUP_JOBS)."),
    wait: float = WAIT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Back up PostgreSQL, Redis and the object store into one sealed, encrypted set."""
    if kind not in ("full", "diff", "incr"):
        fail("--type must be full, diff or incr")

    def body() -> Any:
        conf, repo, key = _setup(repository)
        urls = _urls(conf)
        pitr = _pitr(conf, urls, logical)
        if pitr is not None:
            pitr.kind = kind
        with _progress(as_json) as report:
            return (
                create_backup(
                    conf,
                    urls,
                    repo,
                    key=key,
                    include_redis=not skip_redis,
                    include_objects=not skip_objects,
                    jobs=jobs,
                    wait=wait,
                    pitr=pitr,
                    progress=report,
                ),
                repo,
                key,
            )

    manifest, repo, key = _guard(body)
    facts = {
        "name": manifest.name,
        "repository": repo.url,
        "bytes": manifest.stored_bytes,
        "seconds": manifest.seconds,
        "encrypted": manifest.encrypted,
        "method": manifest.database.get("method"),
        "redis_keys": manifest.redis.get("keys"),
        "objects": manifest.objects.get("objects"),
        "objects_copied": manifest.objects.get("copied"),
        "objects_reused": manifest.objects.get("reused"),
    }
    if as_json:
        _print(facts)
        return
    note = "" if key else " [yellow](not encrypted: set BACKUP_ENCRYPTION_KEY_FILE)[/]"
    console.print(
        f"backup {manifest.name}: {manifest.stored_bytes / 1e6:.1f} MB in {manifest.seconds:.1f}s"
        f" → {repo.url}{note}"
    )


@app.command("list")
def list_(repository: str | None = REPO_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List sets, newest first; a damaged set is listed as such, with its problem."""
    _conf, repo, key = _guard(lambda: _setup(repository))
    sets = _guard(lambda: catalog.list_sets(repo, key))
    if as_json:
        _print(
            [
                {
                    "name": s.name,
                    "valid": s.valid,
                    "problem": s.problem,
                    "created_at": s.manifest.created_at if s.manifest else None,
                    "bytes": s.manifest.stored_bytes if s.manifest else None,
                    "alembic_revision": s.manifest.alembic_revision if s.manifest else None,
                    "method": s.manifest.database.get("method") if s.manifest else None,
                }
                for s in sets
            ]
        )
        return
    table = Table(title=f"Backups in {repo.url}")
    for column in (
        "name",
        "created",
        "size",
        "db revision",
        "method",
        "redis keys",
        "objects",
        "state",
    ):
        table.add_column(column)
    for s in sets:
        m = s.manifest
        if m is None:
            table.add_row(s.name, "", "", "", "", "", "", f"[red]damaged: {s.problem}[/]")
            continue
        table.add_row(
            m.name,
            m.created_at,
            f"{m.stored_bytes / 1e6:.1f} MB",
            m.alembic_revision or "-",
            str(m.database.get("method", "")),
            str(m.redis.get("keys", "-")),
            str(m.objects.get("objects", "-")),
            "encrypted" if m.encrypted else "plain",
        )
    console.print(table)


@app.command()
def verify(
    name: str = typer.Argument(..., help="Set name (see `backup list`) or `latest`."),
    repository: str | None = REPO_OPTION,
    run_drill: bool = typer.Option(
        False, "--drill", help="Also restore into scratch copies and compare content hashes."
    ),
    wait: float = WAIT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Check every file of a set against its manifest; --drill restores it to scratch copies."""

    def body() -> dict[str, Any]:
        conf, repo, key = _setup(repository)
        with _progress(as_json) as report:
            if run_drill:
                urls = _urls(conf)
                pitr = for_server(conf, urls) if conf.backup_pitr else None
                result = drill(
                    conf, urls, repo, name, key=key, wait=wait, pitr=pitr, progress=report
                )
                return {"name": name, "drill": result, "ok": result["ok"]}
            manifest = catalog.verify(repo, name, key, progress=report)
            return {
                "name": manifest.name,
                "files": len(manifest.files),
                "blobs": len(manifest.blobs),
                "ok": True,
            }

    result = _guard(body)
    if as_json:
        _print(result)
    elif run_drill:
        d = result["drill"]
        state = "[green]passed[/]" if d["ok"] else "[red]FAILED[/]"
        console.print(f"drill of {name} {state} in {d['seconds']:.1f}s (the measured RTO)")
        for problem in d["problems"]:
            console.print(f"  {problem}")
    else:
        console.print(
            f"{result['name']}: {result['files']} files and {result['blobs']} object blobs intact"
        )
    if not result["ok"]:
        raise typer.Exit(1)


def _stack_urls(conf: Settings, stack: Any) -> StoreUrls:
    """The configured URLs, the started embedded stack's where none is set."""
    admin = conf.database_admin_url or (
        None if conf.database_url else getattr(stack, "admin_database_url", None)
    )
    return _as_owner(
        StoreUrls(
            conf.database_url or stack.database_url,
            conf.redis_url or stack.redis_url,
            conf.s3_endpoint_url or stack.s3_endpoint_url,
            admin_database_url=admin,
            s3_keys=None if conf.s3_endpoint_url else getattr(stack, "s3_keys", None),
        )
    )


class _LocalStack:
    """`dev.localstack` as backup/restore_flow.py's EmbeddedStack."""

    def __init__(self, conf: Settings) -> None:
        self.conf = conf

    def configured(self) -> bool:
        return self.conf.database_url is None or self.conf.redis_url is None

    def running(self) -> bool:
        from templator.dev.localstack import discover_running_stack

        return discover_running_stack(self.conf.var_dir) is not None

    @contextmanager
    def started(self, *, pgbackrest: bool) -> Iterator[tuple[StoreUrls, Pitr | None]]:
        from templator.dev.localstack import LocalStack

        with LocalStack(self.conf) as stack:
            urls = _stack_urls(self.conf, stack.urls)
            pitr = for_server(self.conf, urls, server=stack.postgres) if pgbackrest else None
            yield urls, pitr


@app.command()
def restore(
    name: str = typer.Argument(..., help="Set name (see `backup list`) or `latest`."),
    repository: str | None = REPO_OPTION,
    to_time: str | None = typer.Option(
        None, "--to-time", help="Point in time (ISO-8601 with zone) for a pgBackRest set."
    ),
    target_database: str | None = typer.Option(
        None, "--target-database", help="Restore PostgreSQL into this database instead."
    ),
    only: str | None = typer.Option(
        None, help="Comma-separated stores to restore: postgres,redis,objects (default: all)."
    ),
    wait: float = WAIT_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make PostgreSQL, Redis and the bucket equal to a set (what came after it is gone)."""

    def body() -> RestoreReport:
        conf, repo, key = _setup(repository)
        request = RestoreRequest.parse(
            name, only=only, to_time=to_time, target_database=target_database, wait=wait
        )
        return run_restore(
            conf,
            repo,
            key,
            request,
            urls=lambda: _urls(conf),
            stack=_LocalStack(conf),
            confirm=lambda target, action: confirm_destructive(
                target=target, action=action, yes=yes
            ),
            progress=lambda: _progress(as_json),
        )

    report = _guard(body)
    if as_json:
        _print(report.__dict__)
        return
    console.print(
        f"restored {report.name} ({', '.join(report.restored)}) into {report.database} "
        f"in {report.seconds:.1f}s"
    )
    if report.rows_missing_objects:
        console.print(f"[red]{report.rows_missing_objects} rows point at a missing object[/]")


@app.command()
def prune(
    repository: str | None = REPO_OPTION,
    keep_last: int = typer.Option(1, min=1, help="Always keep this many newest sets."),
    keep_daily: int | None = typer.Option(
        None, min=0, help="Newest set of each of the last N days (default: BACKUP_KEEP_DAILY)."
    ),
    keep_weekly: int | None = typer.Option(
        None, min=0, help="Newest of each of the last N ISO weeks (default: BACKUP_KEEP_WEEKLY)."
    ),
    keep_monthly: int | None = typer.Option(
        None, min=0, help="Newest of each of the last N months (default: BACKUP_KEEP_MONTHLY)."
    ),
    dry_run: bool = typer.Option(False, help="Only show what would be deleted."),
    wait: float = WAIT_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete sets the retention policy does not keep, leftovers of dead creates, unused blobs."""

    def body() -> retention.PrunePlan:
        conf, repo, key = _setup(repository)
        policy = retention.Policy(
            last=keep_last,
            daily=conf.backup_keep_daily if keep_daily is None else keep_daily,
            weekly=conf.backup_keep_weekly if keep_weekly is None else keep_weekly,
            monthly=conf.backup_keep_monthly if keep_monthly is None else keep_monthly,
        )
        planned = retention.prune(repo, policy, key=key, dry_run=True, wait=wait)
        if dry_run or not (planned.delete or planned.leftovers or planned.blobs):
            return planned
        if planned.delete:
            confirm_destructive(
                target=Path(repo.url).name or repo.url,
                action=f"delete {len(planned.delete)} set(s) in {repo.url}",
                yes=yes,
            )
        expire = None
        try:
            urls = _urls(conf)
            pitr = for_server(conf, urls) if conf.backup_pitr else None
        except TemplatorError:
            pitr = None
        if pitr is not None:
            expire = pitr.expire
        return retention.prune(repo, policy, key=key, wait=wait, expire=expire)

    result = _guard(body)
    if as_json:
        _print(result.__dict__)
        return
    for name in result.delete:
        console.print(f"  delete {name}")
    for name in result.leftovers:
        console.print(f"  delete leftover {name}")
    for damaged in result.damaged:
        console.print(f"  [red]kept damaged set {damaged}[/]")
    if result.blobs_skipped:
        console.print(f"  unreferenced blobs kept: {result.blobs_skipped}")
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {len(result.delete)} set(s), {len(result.leftovers)} leftover(s), "
        f"{len(result.blobs)} unreferenced blob(s); kept {len(result.keep)}"
    )


@app.command()
def status(repository: str | None = REPO_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Age of the newest good set, newest drill, WAL archive lag (the RPO), repository size."""

    def body() -> dict[str, Any]:
        conf, repo, key = _setup(repository)
        lag = None
        try:
            pitr = for_server(conf, _urls(conf)) if conf.backup_pitr else None
            lag = pitr.archive_lag() if pitr is not None else None
        except TemplatorError:
            lag = None
        return retention.status(repo, key, archive_lag=lag)

    data = _guard(body)
    if as_json:
        _print(data)
        return
    age = data["newest_age_seconds"]
    console.print(
        f"repository        {data['repository']} ({data['repository_bytes'] / 1e6:.1f} MB)"
    )
    console.print(f"sets              {data['sets']} good, {len(data['damaged'])} damaged")
    console.print(
        f"newest set        {data['newest'] or '-'}"
        + (f" ({age / 3600:.1f} h old)" if age is not None else "")
    )
    drill_ = data["last_drill"]
    console.print(
        "last drill        "
        + (
            f"{'passed' if drill_['ok'] else 'FAILED'} at {drill_['at']} ({drill_['seconds']:.1f}s)"
            if drill_
            else "-"
        )
    )
    lag = data["archive_lag_seconds"]
    console.print(f"WAL archive lag   {'-' if lag is None else f'{lag:.0f} s'}")

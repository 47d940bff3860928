"""`templator backup restore` as a workflow: which servers a set is restored into, and
the checks of the request, apart from the command line that parses and prints.

A logical set is restored into the servers the settings name (or a running embedded
stack); when the embedded stack is configured but stopped, it is started for the
restore and stopped after, so the next `templator up` serves the restored state. A
pgBackRest set replaces the embedded server's data folder, so that server must be ours
to stop and start: the stack must not be running. The embedded stack itself is dev
tooling, which only the CLI imports: it arrives here as an `EmbeddedStack`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import make_url

from templator.backup import catalog
from templator.backup.catalog import Progress, Repo
from templator.backup.crypto import BackupKey
from templator.backup.errors import BackupConfigError
from templator.backup.pgbackrest import Pitr
from templator.backup.restore import STORES, RestoreReport, restore_backup
from templator.config import Settings
from templator.connections import StoreUrls


@dataclass(frozen=True)
class RestoreRequest:
    """What the operator asked for, checked."""

    name: str
    only: set[str] | None = None
    to_time: datetime | None = None
    target_database: str | None = None
    wait: float = 0.0

    @classmethod
    def parse(
        cls,
        name: str,
        *,
        only: str | None = None,
        to_time: str | None = None,
        target_database: str | None = None,
        wait: float = 0.0,
    ) -> RestoreRequest:
        """The request from the command line's text; BackupConfigError names what is wrong."""
        return cls(name, parse_stores(only), parse_moment(to_time), target_database, wait)


def parse_stores(only: str | None) -> set[str] | None:
    """`postgres,redis` → {"postgres", "redis"}; None for all stores."""
    if not only:
        return None
    stores = {s.strip() for s in only.split(",") if s.strip()}
    unknown = stores - set(STORES)
    if unknown:
        raise BackupConfigError(f"--only: unknown store(s) {', '.join(sorted(unknown))}")
    return stores


def parse_moment(text: str | None) -> datetime | None:
    """An ISO-8601 time with its zone, or None."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BackupConfigError(f"--to-time {text!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise BackupConfigError(f"--to-time {text!r} needs a time zone (e.g. +00:00 or Z)")
    return moment


class EmbeddedStack(Protocol):
    """The embedded local stack, as the restore needs it (the CLI passes its own)."""

    def configured(self) -> bool:
        """Whether the settings leave a store to the embedded stack."""
        ...

    def running(self) -> bool:
        """Whether a `templator up` is serving now."""
        ...

    def started(self, *, pgbackrest: bool) -> AbstractContextManager[tuple[StoreUrls, Pitr | None]]:
        """Start the stack for the restore: its URLs (as the schema owner) and, when
        asked, its pgBackRest commands (None when it is not configured for pgBackRest)."""
        ...


Confirm = Callable[[str, str], None]
"""Asks the operator to confirm (target, action); returns only if they did."""


def run_restore(
    conf: Settings,
    repo: Repo,
    key: BackupKey | None,
    request: RestoreRequest,
    *,
    urls: Callable[[], StoreUrls],
    stack: EmbeddedStack,
    confirm: Confirm,
    progress: Callable[[], AbstractContextManager[Progress]],
) -> RestoreReport:
    """Restore set `request.name` into the servers it belongs in (see the module)."""
    manifest = catalog.resolve(repo, request.name, key)
    embedded = stack.configured()
    running = embedded and stack.running()

    def restore(target: StoreUrls, pitr: Pitr | None) -> RestoreReport:
        database = request.target_database or make_url(target.database_url).database or ""
        confirm(
            database,
            f"replace database {database!r}, the cache and the bucket with {manifest.name}",
        )
        with progress() as report:
            return restore_backup(
                conf,
                target,
                repo,
                request.name if request.name == "latest" else manifest.name,
                key=key,
                only=request.only,
                target_database=request.target_database,
                to_time=request.to_time,
                pitr=pitr,
                wait=request.wait,
                progress=report,
            )

    if manifest.database.get("method") != "pgbackrest":
        if request.to_time is not None:
            raise BackupConfigError(
                f"--to-time needs a pgBackRest set; {manifest.name} is a logical dump"
            )
        if not embedded or running:
            return restore(urls(), None)
        with stack.started(pgbackrest=False) as (stack_urls, _):
            return restore(stack_urls, None)
    if running:
        raise BackupConfigError(
            f"{manifest.name} is a pgBackRest set: stop `templator up` first; the restore "
            "starts the embedded stack, restores it and stops it again"
        )
    with stack.started(pgbackrest=True) as (stack_urls, pitr):
        if pitr is None:
            raise BackupConfigError(
                f"{manifest.name} is a pgBackRest set but the embedded server under "
                f"{conf.var_dir} is not configured for pgBackRest"
            )
        return restore(stack_urls, pitr)

"""The authentication epoch as this process knows it, learnt from PostgreSQL.

Every security change (a token revoked, a role changed, a user erased) bumps one counter,
`auth_epoch.epoch`, in the transaction that makes the change, and notifies
`templator_auth_epoch` (delivered at commit). A cached token record carries the epoch it
was read at, in the same statement as the token's row, and is believed only when that
is the epoch this process knows now (`EpochWatch.current`): a change that never reached
Redis (paused, restarting, its invalidation lost) still makes every older record
untrusted, because the epoch lives in PostgreSQL, not in the cache.

The process learns the epoch on a connection of its own: LISTEN for bumps (milliseconds
after their commit), and a re-read every AUTH_EPOCH_POLL_SECONDS, which also proves the
connection alive (behind PgBouncer, which cannot LISTEN, the re-read alone). While the
epoch is unknown — before the first read, after the connection is lost, until it is read
again — `current` is None and no cached record is believed: authentication reads
PostgreSQL (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from templator.config import ProcessRole, Settings

log = logging.getLogger("templator.epoch")

CHANNEL = "templator_auth_epoch"
"""The NOTIFY channel a bump announces the new epoch on (payload: the epoch)."""
READ = "SELECT epoch FROM auth_epoch"
BUMP = (
    "WITH bumped AS (UPDATE auth_epoch SET epoch = epoch + 1 RETURNING epoch) "
    f"SELECT epoch, pg_notify('{CHANNEL}', epoch::text) FROM bumped"
)
"""The bump and its notification, in the caller's transaction (the NOTIFY goes at commit)."""
MAX_RECONNECT_DELAY = 2.0


class EpochWatch:
    """The current authentication epoch (None while unknown: trust no cached record)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        url: str | None = None,
        role: ProcessRole = ProcessRole.API,
    ) -> None:
        """Watch the database at `url` once started; without one, the epoch stays unknown."""
        self.current: int | None = None
        self._settings = settings
        self._dsn = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            if url
            else None
        )
        self._role = role
        self._task: asyncio.Task[None] | None = None
        self._outage_logged = False

    def advance(self, epoch: int) -> None:
        """This process committed a bump to `epoch`: know it now, without waiting for the
        notification (an unknown epoch stays unknown: a later bump may exist)."""
        if self.current is not None and epoch > self.current:
            self.current = epoch

    def believes(self, record: dict[str, Any]) -> bool:
        """Whether a cached auth record was read at the epoch known now."""
        current = self.current
        return current is not None and record.get("epoch") == current

    def start(self) -> None:
        """Start watching (once; nothing without a database URL)."""
        if self._task is None and self._dsn is not None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        """Stop watching; the epoch is unknown again."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.current = None

    async def _watch(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                lost = self.current is not None
                if lost:  # the connection worked: retry quickly
                    delay = 0.1
                self.current = None
                if not self._outage_logged:
                    # A known epoch lost is worth a warning; an epoch never learnt (the
                    # database down from the start) is the outage every request reports.
                    log.log(
                        logging.WARNING if lost else logging.INFO,
                        "authentication epoch unknown (%s): cached token records are not "
                        "believed until PostgreSQL answers again",
                        str(exc) or type(exc).__name__,
                    )
                    self._outage_logged = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    async def _follow(self) -> None:
        """One connection's life: LISTEN, then re-read the epoch every poll period until
        the connection is lost (which raises)."""
        assert self._settings is not None and self._dsn is not None
        settings = self._settings
        deadline = settings.db_client_deadline or float(settings.db_connect_timeout) + 5
        conn: Any = await asyncpg.connect(
            self._dsn,
            timeout=settings.db_connect_timeout,
            command_timeout=deadline,
            server_settings={"application_name": f"templator-{self._role.value}-epoch"},
            statement_cache_size=0,
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            if not settings.db_pgbouncer:  # a transaction pooler cannot deliver NOTIFY
                await conn.add_listener(CHANNEL, self._notified)
            while True:
                epoch = int(await conn.fetchval(READ))
                # Never backwards: a notification may have arrived while the read was on
                # its way, from a snapshot older than it.
                self.current = max(self.current or 0, epoch)
                if self._outage_logged:
                    log.info("authentication epoch known again: cached token records trusted")
                    self._outage_logged = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.auth_epoch_poll_seconds):
                        await lost.wait()
                if lost.is_set():
                    raise ConnectionError("the epoch connection was closed")
        finally:
            conn.terminate()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self.current is not None:
            self.current = max(self.current, int(payload))

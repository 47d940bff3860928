"""Long-poll wake-ups: one LISTEN connection per API process, fanned out to every waiting
claim of that process.

A session that becomes claimable (created ready, submitted, released) sends
`pg_notify('templator_work')` in its own transaction, so the notification arrives when it
commits. The listener bumps a generation counter and wakes every waiter; each waiter then
tries to claim again (one of them wins the session, the others wait on). A waiter reads
the generation *before* its claim, so a notification that arrives between its empty
claim and its wait is not lost. While the listener is disconnected (PostgreSQL
restarting) it retries every second and, once back, wakes everyone: what became ready
meanwhile is claimed then. The rescuer also wakes the waiters after each pass, so a
retry whose backoff ended is found within one rescue interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy.engine import make_url

from templator.ai_session.events import WORK_CHANNEL
from templator.config import ProcessRole

log = logging.getLogger("templator.work")
RECONNECT_SECONDS = 1.0


class WorkSignal:
    """A generation counter with one event per generation: `bump` wakes every waiter."""

    def __init__(self) -> None:
        self.generation = 0
        self._event = asyncio.Event()

    def bump(self) -> None:
        """Something may have become claimable: wake every waiter."""
        self.generation += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_past(self, generation: int, timeout: float) -> None:
        """Return once the generation moved past `generation`, or after `timeout` seconds."""
        if self.generation != generation or timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


class BackgroundTask:
    """A coroutine `_run` of the API process, started with the lifespan, cancelled at its end."""

    name = "work"
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start `_run` in the background."""
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel it and wait for it to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError


class WorkListener(BackgroundTask):
    """LISTEN on the work channel in a task of its own, bumping `signal` on each NOTIFY."""

    name = "work-listener"

    def __init__(self, database_url: str, signal: WorkSignal, *, role: ProcessRole) -> None:
        self._conninfo = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._role = role
        self.signal = signal
        self.connected = asyncio.Event()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                log.warning("work listener lost its connection (%s); reconnecting", exc)
            self.connected.clear()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name=f"templator-{self._role.value}-listen",
            connect_timeout=5,
        ) as conn:
            await conn.execute(f"LISTEN {WORK_CHANNEL}")
            self.connected.set()
            # Whatever became ready while nobody listened is claimable now.
            self.signal.bump()
            async for _ in conn.notifies():
                self.signal.bump()

"""The rescuer: a task of each API process that returns sessions whose lease expired to
the queue (after a backoff, attempt + 1 at their next claim) or fails them after their
last attempt, every WORK_RESCUE_INTERVAL_SECONDS. Several processes rescue side by side
without stepping on each other (FOR UPDATE SKIP LOCKED); claims also rescue when they
come back short (work/endpoints.py)."""

from __future__ import annotations

import asyncio
import logging

from templator.ai_session.lifecycle import RetryPolicy
from templator.connections import Connections
from templator.kit.uow import unit_of_work
from templator.work.service import RESCUE_BATCH, WorkService
from templator.work.wakeup import BackgroundTask, WorkSignal

log = logging.getLogger("templator.work")


async def rescue_once(conns: Connections) -> int:
    """One pass: rescue expired leases until none is left; how many were moved."""
    policy = RetryPolicy.from_settings(conns.settings)
    total = 0
    while True:
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            moved = await WorkService(session, conns.cache).rescue(policy)
        total += len(moved)
        if len(moved) < RESCUE_BATCH:
            return total


class Rescuer(BackgroundTask):
    """Runs `rescue_once` periodically and wakes the waiting claims after each pass."""

    name = "work-rescuer"

    def __init__(self, conns: Connections, signal: WorkSignal) -> None:
        self.conns = conns
        self.signal = signal

    async def _run(self) -> None:
        interval = self.conns.settings.work_rescue_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                moved = await rescue_once(self.conns)
            except Exception as exc:  # a store outage: the next pass tries again
                log.warning("rescue pass failed: %s", exc)
                continue
            if moved:
                log.info("rescued %d sessions whose lease expired", moved)
            # Retries whose backoff ended since the last pass are claimable now.
            self.signal.bump()

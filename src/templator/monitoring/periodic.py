"""A task that calls `sample()` every `interval` seconds while the app runs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class Periodic:
    """Subclasses set `interval` and define `sample()`; `start()`/`stop()` run it."""

    interval: float
    task_name = "periodic"
    _task: asyncio.Task[None] | None = None

    def sample(self) -> Any:
        """One sample (overridden)."""
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Sample in the background until `stop()`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

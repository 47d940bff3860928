"""The store collector: cached figures of every store, exposed as Prometheus metric families.

prometheus_client calls `collect()` synchronously while rendering a scrape, so the stores
are never queried there. `refresh()` (awaited by the /metrics endpoint just before
rendering) starts a gathering task for each source whose figures are older than its
interval and waits for them at most `timeout` seconds:

* a scrape never hammers a store: however many scrapes arrive, a source is asked at most
  once per interval, and never again while a previous ask is still running;
* a slow store never hangs a scrape: after `timeout` the scrape renders what it has, the
  late store reported down (`pg_up 0`, `redis_up 0`…) until it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from templator.monitoring import families
from templator.monitoring.stores import Figures, Source

log = logging.getLogger("templator.monitoring")


@dataclass
class SourceState:
    """The last figures of one source and how the last ask went."""

    figures: Figures | None = None
    ok: bool = False
    error: str | None = None
    duration: float = 0.0
    finished_at: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    started_at: float = 0.0


class StoreCollector:
    """Every store's figures, cached per source, as metric families."""

    def __init__(self, sources: Sequence[Source], *, timeout: float) -> None:
        self.sources = list(sources)
        self.timeout = timeout
        self.states = {source.name: SourceState() for source in self.sources}

    def _stale(self, source: Source, now: float) -> bool:
        state = self.states[source.name]
        return state.finished_at == 0.0 or now - state.finished_at >= source.interval

    async def _ask(self, source: Source) -> None:
        state = self.states[source.name]
        started = time.monotonic()
        try:
            figures = await source.gather()
        except Exception as exc:  # a store that cannot answer is reported down, whatever failed
            state.ok, state.error = False, f"{type(exc).__name__}: {exc}".strip()
            log.debug("store collector: %s failed: %s", source.name, state.error)
        else:
            state.figures, state.ok, state.error = figures, True, None
        state.duration = time.monotonic() - started
        state.finished_at = time.monotonic()

    async def refresh(self) -> None:
        """Ask each stale source (at most once at a time) and wait up to `timeout`."""
        now = time.monotonic()
        pending: list[asyncio.Task[None]] = []
        for source in self.sources:
            state = self.states[source.name]
            if state.task is not None and not state.task.done():
                pending.append(state.task)
            elif self._stale(source, now):
                state.started_at = now
                state.task = asyncio.create_task(self._ask(source), name=f"collect-{source.name}")
                pending.append(state.task)
        if pending:
            await asyncio.wait(pending, timeout=self.timeout)
        for source in self.sources:  # still running after the deadline: down for now
            state = self.states[source.name]
            if state.task is not None and not state.task.done():
                state.ok = False
                state.error = f"no answer within {self.timeout:g}s"

    def snapshot(self) -> dict[str, Any]:
        """Each source's last figures and status, JSON-ready (monitor, dashboard)."""
        now = time.monotonic()
        return {
            name: {
                "up": state.ok,
                "error": state.error,
                "age_seconds": round(now - state.finished_at, 3) if state.finished_at else None,
                "duration_seconds": round(state.duration, 4),
                "figures": state.figures if state.ok else None,
            }
            for name, state in self.states.items()
        }

    def collect(self) -> Iterator[Metric]:
        """The cached figures as metric families (never touches a store)."""
        now = time.monotonic()
        success = GaugeMetricFamily(
            "templator_store_collector_success",
            "Whether the last ask of this store answered within the collector's timeout",
            labels=["store"],
        )
        duration = GaugeMetricFamily(
            "templator_store_collector_duration_seconds",
            "Seconds the last ask of this store took",
            labels=["store"],
        )
        age = GaugeMetricFamily(
            "templator_store_collector_age_seconds",
            "Seconds since this store's figures were gathered (the collector's cache)",
            labels=["store"],
        )
        for name, state in self.states.items():
            success.add_metric([name], 1.0 if state.ok else 0.0)
            duration.add_metric([name], state.duration)
            age.add_metric([name], now - state.finished_at if state.finished_at else 0.0)
        yield from (success, duration, age)
        for name, state in self.states.items():
            yield from families.for_source(name, state.figures if state.ok else None)

    async def close(self) -> None:
        """Cancel running asks and close every source."""
        for state in self.states.values():
            if state.task is not None and not state.task.done():
                state.task.cancel()
        for source in self.sources:
            await source.close()

"""What `/metrics` serves: the process's metrics (or every worker's), and the collectors.

Collectors are pluggable in one place, `COLLECTORS`: each entry is a factory given the
app's connection layer, returning a prometheus_client collector (anything with a
`collect()`); a collector that also has an `async refresh()` is awaited before each
scrape (with its own deadline: see monitoring/collector.py).

Several uvicorn workers (`templator serve --workers N`) use prometheus-client's
multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` names a folder where every process writes
its counters, histograms and gauges (memory-mapped files), and the worker answering a
scrape reads them all (`MultiProcessCollector`). `templator serve` prepares and wipes
the folder before the workers start; a worker that exits removes its live gauges
(`mark_process_dead`, what gunicorn's `child_exit` hook does elsewhere), and a starting
worker removes those of workers that died without saying so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import Metric

from templator import redis as redis_factory
from templator.cache import CACHE_REQUESTS
from templator.config import ProcessRole
from templator.connections import Connections
from templator.monitoring.collector import StoreCollector
from templator.monitoring.history import History
from templator.monitoring.multiproc import multiprocess_dir, reap_dead_processes
from templator.monitoring.pools import PoolSampler
from templator.monitoring.stores import (
    DomainSource,
    FilesystemSource,
    MetricsConnection,
    ObjectStoreSource,
    PostgresSource,
    RedisSource,
    Source,
)


class Collector(Protocol):
    """prometheus_client's collector protocol."""

    def collect(self) -> Iterable[Metric]:
        """The metric families now."""
        ...


CollectorFactory = Callable[[Connections], Collector | None]


def store_sources(conns: Connections, *, role: ProcessRole) -> list[Source]:
    """One source per store the connection layer knows, with the settings' intervals."""
    conf = conns.settings
    pg = MetricsConnection(conns.urls.database_url, role=role, timeout=conf.metrics_store_timeout)
    every = conf.metrics_cache_seconds
    sources: list[Source] = [
        PostgresSource(pg, interval=every),
        DomainSource(pg, interval=every),
        # A client of its own that does not retry: a scrape reports Redis as it finds it
        # (the app's client retries a refused connection for about 0.7 s, long enough
        # for a restarted Redis to hide the outage from the scrape taken during it).
        RedisSource(
            redis_factory.create_client(
                conf.model_copy(update={"redis_retries": 0}), url=conns.urls.redis_url, role=role
            ),
            interval=every,
        ),
        FilesystemSource([conf.var_dir, conf.backup_dir], interval=every),
    ]
    if conns.store is not None:
        sources.append(ObjectStoreSource(conns.store, interval=conf.metrics_object_store_seconds))
    return sources


def store_collector(conns: Connections) -> StoreCollector:
    """The collector of every store (PostgreSQL, Redis, object store, disk, domain)."""
    return StoreCollector(
        store_sources(conns, role=conns.role), timeout=conns.settings.metrics_store_timeout
    )


def backup_collector(conns: Connections) -> Collector:
    """Backup freshness (templator_backup_*), read from the repository at most once a
    minute: the gauges the backup alerts use."""
    from templator.backup.metrics import BackupCollector

    return BackupCollector(conns.settings, urls=conns.urls)


COLLECTORS: list[CollectorFactory] = [store_collector, backup_collector]
"""Every collector `/metrics` serves beside the process metrics — the one place to add one
(e.g. the backup freshness collector of `templator.backup`)."""


class _DefaultRegistry:
    """This process's own metrics (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class Metrics:
    """The app's metrics: the process's or all workers', the collectors, the pool sampler."""

    def __init__(self, conns: Connections, factories: Iterable[CollectorFactory] | None = None):
        self.conns = conns
        self.collectors = [
            made for factory in (factories or COLLECTORS) if (made := factory(conns)) is not None
        ]
        self.folder = multiprocess_dir()
        self.process: Any = (
            multiprocess.MultiProcessCollector(None, path=str(self.folder))  # type: ignore[no-untyped-call]
            if self.folder is not None
            else _DefaultRegistry()
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.process)
        for collector in self.collectors:
            self.registry.register(collector)
        self.pools = PoolSampler(conns, interval=conns.settings.metrics_pool_sample_seconds)
        self.history = History(
            self.process_metrics, interval=conns.settings.metrics_history_seconds
        )

    @property
    def stores(self) -> StoreCollector | None:
        """The store collector, when configured."""
        return next((c for c in self.collectors if isinstance(c, StoreCollector)), None)

    def start(self) -> None:
        """Reap dead workers' gauges and start sampling the pools."""
        if self.folder is not None:
            reap_dead_processes(self.folder)
        # Labelled counters exist only once used; made at 0 now, a ratio or increase()
        # over them is defined from the first scrape on.
        for outcome in ("hit", "miss"):
            CACHE_REQUESTS.labels(outcome)
        self.pools.start()
        self.history.start()

    async def stop(self) -> None:
        """Stop sampling, close the collectors, and withdraw this process's live gauges."""
        await self.pools.stop()
        await self.history.stop()
        for collector in self.collectors:
            close = getattr(collector, "close", None)
            if close is not None:
                await close()
        if self.folder is not None:
            with contextlib.suppress(OSError):
                multiprocess.mark_process_dead(os.getpid(), str(self.folder))  # type: ignore[no-untyped-call]

    async def refresh(self) -> None:
        """Bring every refreshable collector up to date (each within its own deadline)."""
        self.pools.sample()
        for collector in self.collectors:
            refresh = getattr(collector, "refresh", None)
            if refresh is not None:
                await refresh()

    async def render(self) -> bytes:
        """The text exposition of everything, after a refresh."""
        await self.refresh()
        return generate_latest(self.registry)

    def process_metrics(self) -> Iterable[Metric]:
        """The process's (or every worker's) own metric families, without the stores."""
        return list(self.process.collect())

"""The connection pools of an API process as numbers: the SQLAlchemy pool, the driver pool
(`driver_pool.DriverPool`) and the asyncpg read pool (`postgres.ReadPool`).

Pools live in each worker process, so their gauges are ordinary prometheus_client gauges
in `livesum` mode: under several workers (multiprocess mode) a scrape sums the live
workers' values; a worker that exits stops counting. Each worker writes its own values a
few times a second (`PoolSampler`) and the worker answering a scrape writes them just
before rendering, so nothing is read on the request path.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

from templator.connections import Connections
from templator.monitoring.periodic import Periodic
from templator.postgres import MeteredQueuePool

_LABELS = ["pool"]
POOL_SIZE = Gauge(
    "templator_db_pool_size",
    "Connections the pool may hold (SQLAlchemy: pool size + overflow)",
    _LABELS,
    multiprocess_mode="livesum",
)
POOL_CONNECTIONS = Gauge(
    "templator_db_pool_connections",
    "Open connections of the pool, by state (in_use, idle)",
    [*_LABELS, "state"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "templator_db_pool_waiting",
    "Callers waiting for a connection of the pool",
    _LABELS,
    multiprocess_mode="livesum",
)
POOL_TIMEOUTS = Counter(
    "templator_db_pool_timeouts",
    "Callers that gave up waiting for a connection (SQLAlchemy: 503 busy; read pool: "
    "the read went through the route instead)",
    _LABELS,
)


def pool_stats(conns: Connections) -> dict[str, dict[str, int]]:
    """Each pool's figures now: max, open, in_use, idle, waiting, timeouts."""
    pool: Any = conns.engine.pool
    checked_out = int(pool.checkedout())
    idle = int(pool.checkedin())
    metered = isinstance(pool, MeteredQueuePool)
    stats = {
        "sqlalchemy": {
            "max": int(pool.size()) + (max(pool.max_overflow, 0) if metered else 0),
            "open": checked_out + idle,
            "in_use": checked_out,
            "idle": idle,
            "waiting": pool.waiting if metered else 0,
            "timeouts": pool.timeouts if metered else 0,
        }
    }
    if conns.read_pool is not None:
        stats["read"] = conns.read_pool.stats()
    if conns.driver_pool is not None:
        stats["driver"] = conns.driver_pool.stats()
    if conns.statement_pool is not None:
        stats["statement"] = conns.statement_pool.stats()
    return stats


class PoolSampler(Periodic):
    """Writes this process's pool figures into the gauges, now and every `interval` s."""

    task_name = "pool-sampler"

    def __init__(self, conns: Connections, *, interval: float = 1.0) -> None:
        self.conns = conns
        self.interval = interval
        self._timeouts: dict[str, int] = {}

    def sample(self) -> dict[str, dict[str, int]]:
        """Write the figures now and return them."""
        stats = pool_stats(self.conns)
        for name, figures in stats.items():
            POOL_SIZE.labels(name).set(figures["max"])
            POOL_CONNECTIONS.labels(name, "in_use").set(figures["in_use"])
            POOL_CONNECTIONS.labels(name, "idle").set(figures["idle"])
            POOL_WAITING.labels(name).set(figures["waiting"])
            # The pools count plain integers; the counter follows them by the difference
            # (a recreated SQLAlchemy pool starts again at 0: nothing is subtracted).
            # Made at 0 from the start, so increase() sees the first timeout too.
            timeouts = POOL_TIMEOUTS.labels(name)
            before = self._timeouts.get(name, 0)
            if figures["timeouts"] > before:
                timeouts.inc(figures["timeouts"] - before)
            self._timeouts[name] = figures["timeouts"]
        return stats

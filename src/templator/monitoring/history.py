"""The last hour of API throughput and latency, kept in-process for the dashboard's charts.

Every `interval` seconds the sampler reads the HTTP counters and the latency histogram —
every worker's under multiprocess mode, so each worker holds the whole API's history —
and keeps the differences: requests and 5xx answers per second, and the p50/p95 latency
of the requests of that interval, interpolated within the histogram's buckets as
Prometheus's histogram_quantile does. Probes, scrapes, the dashboard itself and event
streams (which stay open for minutes) are left out of the latency.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from prometheus_client.core import Metric

from templator.monitoring.periodic import Periodic

_EXCLUDED = re.compile(r"^(/metrics|/health.*|/dashboard.*|.*/events)$")


@dataclass(frozen=True, slots=True)
class Point:
    """One interval of the API."""

    at: float
    requests_per_second: float
    errors_per_second: float
    p50_seconds: float | None
    p95_seconds: float | None


@dataclass
class _Totals:
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] | None = None


def _totals(families: Iterable[Metric]) -> _Totals:
    totals = _Totals(buckets={})
    assert totals.buckets is not None
    for family in families:
        if family.name == "templator_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    totals.requests += sample.value
                    if sample.labels.get("status", "").startswith("5"):
                        totals.errors += sample.value
        elif family.name == "templator_http_request_seconds":
            for sample in family.samples:
                route = sample.labels.get("route", "")
                if sample.name.endswith("_bucket") and not _EXCLUDED.match(route):
                    bound = float(sample.labels["le"])
                    totals.buckets[bound] = totals.buckets.get(bound, 0.0) + sample.value
    return totals


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """histogram_quantile over cumulative bucket counts {upper bound: count}."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return lower


class History(Periodic):
    """A ring of `Point`s spanning `span` seconds, sampled every `interval` seconds."""

    task_name = "http-history"

    def __init__(
        self, source: Callable[[], Iterable[Metric]], *, interval: float, span: float = 3600
    ) -> None:
        self.source = source
        self.interval = interval
        self.points: deque[Point] = deque(maxlen=max(2, int(span / interval)))
        self._last: tuple[float, _Totals] | None = None

    def sample(self) -> Point | None:
        """Read the totals now; the point since the last sample, if there was one."""
        now, totals = time.time(), _totals(self.source())
        last, self._last = self._last, (now, totals)
        if last is None or now <= last[0]:
            return None
        seconds = now - last[0]
        assert totals.buckets is not None and last[1].buckets is not None
        before = last[1].buckets
        delta = {bound: count - before.get(bound, 0.0) for bound, count in totals.buckets.items()}
        point = Point(
            at=round(now, 3),
            requests_per_second=max(totals.requests - last[1].requests, 0.0) / seconds,
            errors_per_second=max(totals.errors - last[1].errors, 0.0) / seconds,
            p50_seconds=quantile(0.5, delta),
            p95_seconds=quantile(0.95, delta),
        )
        self.points.append(point)
        return point

    def as_list(self) -> list[dict[str, float | None]]:
        """Every point, oldest first, JSON-ready."""
        return [asdict(point) for point in self.points]

"""Health checks: each component reported on its own, so one store down never hides another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """State of one component."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """What one check found."""

    name: str
    status: Status
    latency_ms: float
    target: str
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HealthReport:
    """All components at one moment."""

    components: list[ComponentHealth]

    @property
    def healthy(self) -> bool:
        """True when every component is up."""
        return all(c.status is Status.UP for c in self.components)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "status": Status.UP.value if self.healthy else Status.DOWN.value,
            "components": {c.name: asdict(c) for c in self.components},
        }


Probe = Callable[[], Awaitable[dict[str, Any] | None]]


async def run_check(name: str, *, target: str, probe: Probe, timeout: float) -> ComponentHealth:
    """Run one probe with a deadline; any failure becomes DOWN with the reason, never raises."""
    started = time.perf_counter()
    try:
        details = await asyncio.wait_for(probe(), timeout)
    except TimeoutError:
        error = f"no answer within {timeout:g}s"
    except Exception as exc:  # a health check reports every failure, whatever its type
        error = f"{type(exc).__name__}: {exc}".strip() or type(exc).__name__
    else:
        latency = (time.perf_counter() - started) * 1000
        return ComponentHealth(name, Status.UP, round(latency, 2), target, None, details or {})
    latency = (time.perf_counter() - started) * 1000
    return ComponentHealth(name, Status.DOWN, round(latency, 2), target, error)


async def run_checks(checks: list[tuple[str, str, Probe]], *, timeout: float) -> HealthReport:
    """Run every check concurrently; each one's result stands on its own."""
    results = await asyncio.gather(
        *(
            run_check(name, target=target, probe=probe, timeout=timeout)
            for name, target, probe in checks
        )
    )
    return HealthReport(list(results))

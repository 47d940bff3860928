"""Health checks: each component reported on its own, so one store down never hides another.

A component's `role` says what it is needed for: `required` (PostgreSQL, the truth: down
means the API cannot serve), `uploads` (the object store: down means uploads and
downloads answer 503, everything else works) or `cache` (Redis: down means slower, never
wrong). Only a required component down makes the report `down`; any other makes it
`degraded`, which a load balancer should keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from prometheus_client import Gauge

STORE_UP = Gauge(
    "templator_store_up",
    "1 when the store answered its last health check, 0 when it did not",
    ["store"],
    multiprocess_mode="livemostrecent",
)


class Status(StrEnum):
    """State of one component, or of the whole report."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


class Role(StrEnum):
    """What a component is needed for."""

    REQUIRED = "required"
    UPLOADS = "uploads"
    CACHE = "cache"


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """What one check found."""

    name: str
    status: Status
    latency_ms: float
    target: str
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    role: Role = Role.REQUIRED


@dataclass(frozen=True, slots=True)
class HealthReport:
    """All components at one moment."""

    components: list[ComponentHealth]

    @property
    def status(self) -> Status:
        """DOWN when a required component is down, DEGRADED when another is, else UP."""
        down = [c for c in self.components if c.status is not Status.UP]
        if any(c.role is Role.REQUIRED for c in down):
            return Status.DOWN
        return Status.DEGRADED if down else Status.UP

    @property
    def healthy(self) -> bool:
        """True when every component is up."""
        return self.status is Status.UP

    @property
    def serving(self) -> bool:
        """True unless a required component is down (readiness answers 200)."""
        return self.status is not Status.DOWN

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "status": self.status.value,
            "down": [c.name for c in self.components if c.status is not Status.UP],
            "components": {c.name: asdict(c) for c in self.components},
        }


Probe = Callable[[], Awaitable[dict[str, Any] | None]]


async def run_check(
    name: str, *, target: str, probe: Probe, timeout: float, role: Role = Role.REQUIRED
) -> ComponentHealth:
    """Run one probe with a deadline; any failure becomes DOWN with the reason, never raises.

    The answer comes at the deadline even when the probe does not give up on its own: a
    late probe is cancelled and left to finish in the background (a driver may take a
    while to unwind a cancelled call to a hung server).
    """
    started = time.perf_counter()
    task = asyncio.ensure_future(probe())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    error: str | None = None
    details: dict[str, Any] | None = None
    if not done:
        task.cancel()
        task.add_done_callback(_consume)
        error = f"no answer within {timeout:g}s"
    elif (exc := task.exception()) is not None:
        error = f"{type(exc).__name__}: {exc}".strip() or type(exc).__name__
        error = error.splitlines()[0]
    else:
        details = task.result()
    latency = round((time.perf_counter() - started) * 1000, 2)
    STORE_UP.labels(name).set(0 if error else 1)
    if error:
        return ComponentHealth(name, Status.DOWN, latency, target, error, role=role)
    return ComponentHealth(name, Status.UP, latency, target, None, details or {}, role=role)


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve a cancelled probe's outcome so asyncio does not log it as never retrieved."""
    with contextlib.suppress(BaseException):
        task.exception()


Check = tuple[str, str, Probe, Role]
"""(name, target, probe, role)."""


async def run_checks(checks: list[Check], *, timeout: float) -> HealthReport:
    """Run every check concurrently; each one's result stands on its own."""
    results = await asyncio.gather(
        *(
            run_check(name, target=target, probe=probe, timeout=timeout, role=role)
            for name, target, probe, role in checks
        )
    )
    return HealthReport(list(results))

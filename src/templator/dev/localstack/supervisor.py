"""Supervision of the local stack's servers: a server that dies is reaped, reported in one
line, and started again with backoff, until the stack stops.

`templator up` runs one `Supervisor` beside the API. It polls each server's process (a
poll reaps it, so a dead server never lingers as a zombie whose pid would keep
PostgreSQL's `postmaster.pid` looking alive), and restarts it on the same port, so every
client reconnects by itself. A restart that fails is retried after a delay that doubles
up to `max_delay`; a server that stays up for `stable_after` seconds starts again from the
shortest delay the next time it dies. Meanwhile the API's /health/ready reports the
server down (`degraded` for Redis and the object store, 503 for PostgreSQL).

Servers restarted here are spawned from the supervisor's thread, which lives until the
stack stops (and stops its servers): it declares so, and its servers get the same
parent-death signal as those the main thread started, so they die with a killed
`templator up` too (the next `templator up`'s stale-stack sweep remains the guarantee).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from templator.dev.localstack.process import LocalStackError, ProcessRecord
from templator.dev.localstack.stack import LABELS, EventHandler, LocalStack
from templator.exceptions import first_line
from templator.kit.process import spawns_children_for_life

log = logging.getLogger("templator.localstack")


@dataclass(slots=True)
class ServerState:
    """What the supervisor knows of one server."""

    name: str
    state: str = "up"  # up | restarting
    restarts: int = 0
    delay: float = 0.0
    retry_at: float = 0.0
    up_since: float = 0.0
    last_exit: str | None = None


def describe_exit(returncode: int) -> str:
    """'exited with code 1' or 'killed by SIGKILL'."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Supervisor:
    """Watch a started `LocalStack`; restart the servers that die."""

    def __init__(
        self,
        stack: LocalStack,
        *,
        on_event: EventHandler | None = None,
        interval: float = 0.2,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        stable_after: float = 30.0,
    ) -> None:
        self.stack = stack
        self.on_event = on_event or _log_event
        self.interval = interval
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        now = time.monotonic()
        self.states = {
            name: ServerState(name, up_since=now) for name in ("postgres", "redis", "seaweedfs")
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stack-supervisor", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 90.0) -> None:
        """Stop watching (a restart under way finishes first); safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        spawns_children_for_life()
        while not self._stop.wait(self.interval):
            for state in self.states.values():
                if self._stop.is_set():
                    return
                try:
                    self._check(state)
                except Exception as exc:  # the watch must outlive any one failure
                    log.warning("supervising %s failed: %s", state.name, exc)

    def _process(self, name: str) -> subprocess.Popen[bytes] | None:
        server = getattr(self.stack, name, None)
        process: subprocess.Popen[bytes] | None = getattr(server, "process", None)
        return process

    def _check(self, state: ServerState) -> None:
        now = time.monotonic()
        if state.state == "up":
            process = self._process(state.name)
            if process is None or (code := process.poll()) is None:  # poll() reaps
                return
            state.last_exit = describe_exit(code)
            stable = now - state.up_since >= self.stable_after
            state.delay = (
                self.first_delay
                if stable or not state.delay
                else min(state.delay * 2, self.max_delay)
            )
            state.state = "restarting"
            state.retry_at = now + state.delay
            self._report(
                state,
                f"{LABELS[state.name]} (pid {process.pid}) {state.last_exit}; "
                f"restarting in {state.delay:g}s",
            )
            return
        if now < state.retry_at:
            return
        try:
            record = self._restart(state.name)
        except (LocalStackError, OSError) as exc:
            state.delay = min(state.delay * 2, self.max_delay)
            state.retry_at = time.monotonic() + state.delay
            reason = first_line(exc)
            self._report(
                state,
                f"{LABELS[state.name]} restart failed ({reason}); retrying in {state.delay:g}s",
            )
            return
        state.state = "up"
        state.restarts += 1
        state.up_since = time.monotonic()
        self._report(state, f"{LABELS[state.name]} restarted (pid {record.pid})")

    def _restart(self, name: str) -> ProcessRecord:
        """Start one server again on its port and wait until it answers."""
        starts: dict[str, Callable[[], ProcessRecord]] = {
            "postgres": self._restart_postgres,
            "redis": self._restart_redis,
            "seaweedfs": self._restart_seaweedfs,
        }
        try:
            record = starts[name]()
        except BaseException:
            server = getattr(self.stack, name)
            server.stop()  # one that started but never answered must not linger
            raise
        self.stack.record_restart(name, record)
        return record

    def _restart_postgres(self) -> ProcessRecord:
        postgres = self.stack.postgres
        assert postgres is not None
        postgres.kill_leftovers()
        record = postgres.start()  # clears the stale postmaster.pid
        postgres.wait_ready(timeout=60)
        return record

    def _restart_redis(self) -> ProcessRecord:
        redis = self.stack.redis
        assert redis is not None
        record = redis.start()
        redis.wait_ready(timeout=30)
        return record

    def _restart_seaweedfs(self) -> ProcessRecord:
        seaweedfs = self.stack.seaweedfs
        assert seaweedfs is not None
        record = seaweedfs.launch()
        seaweedfs.wait_ready(timeout=60)
        return record

    def _report(self, state: ServerState, message: str) -> None:
        self.on_event(state.name, message)


def _log_event(name: str, message: str) -> None:
    """The default report: one warning line per event."""
    log.warning("%s", message)

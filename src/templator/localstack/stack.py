"""The embedded local stack of `templator up`: PostgreSQL, Redis and SeaweedFS under var/.

`var/stack.json` records every server's pid (with its start time, so a reused pid is
never mistaken for ours) and the pid of the owning `templator up`. A lock file keeps two
stacks off the same folder. Before starting, a stack left behind by an owner that died
(killed, crashed) is stopped: that sweep, not the best-effort parent-death signal, is
what guarantees no orphan servers.
"""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import orjson

from templator.config import Settings
from templator.localstack.postgres import LocalPostgres
from templator.localstack.process import LocalStackError, ProcessRecord, is_alive, stop
from templator.localstack.redis import LocalRedis
from templator.localstack.seaweedfs import SeaweedFS

EventHandler = Callable[[str, str], None]
STOP_SIGNALS = {"postgres": signal.SIGINT, "redis": signal.SIGTERM, "seaweedfs": signal.SIGTERM}


@dataclass(frozen=True, slots=True)
class StackUrls:
    """Where the local servers listen."""

    database_url: str
    redis_url: str
    s3_endpoint_url: str


def _state_file(var_dir: Path) -> Path:
    return var_dir / "stack.json"


def _read_state(var_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = orjson.loads(_state_file(var_dir).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data


def _owner_alive(state: dict[str, Any]) -> bool:
    owner = state.get("owner")
    if not owner:
        return False
    return is_alive(ProcessRecord(owner["pid"], owner["create_time"]))


def discover_running_stack(var_dir: Path) -> StackUrls | None:
    """The URLs of a running `templator up` on `var_dir`, or None."""
    state = _read_state(var_dir)
    if state is None or not _owner_alive(state):
        return None
    return StackUrls(**state["urls"])


def sweep_stale(var_dir: Path, on_event: EventHandler | None = None) -> list[str]:
    """Stop servers recorded by a stack whose owner is gone; return their names."""
    state = _read_state(var_dir)
    if state is None or _owner_alive(state):
        return []
    stopped = []
    for name, record in state.get("servers", {}).items():
        proc = ProcessRecord(record["pid"], record["create_time"])
        if is_alive(proc):
            if on_event:
                on_event(name, f"stopping orphan {name} (pid {proc.pid}) left by a dead stack")
            stop(proc, sig=STOP_SIGNALS.get(name, signal.SIGTERM))
            stopped.append(name)
    _state_file(var_dir).unlink(missing_ok=True)
    return stopped


class LocalStack:
    """Start, record and stop the three local servers as one unit."""

    def __init__(self, settings: Settings, *, on_event: EventHandler | None = None) -> None:
        self.settings = settings
        self.var_dir = settings.var_dir
        self.on_event = on_event or (lambda name, message: None)
        self._lock: IO[bytes] | None = None
        self.records: dict[str, ProcessRecord] = {}
        self.postgres: LocalPostgres | None = None
        self.redis: LocalRedis | None = None
        self.seaweedfs: SeaweedFS | None = None
        self.fresh_database = False

    @property
    def urls(self) -> StackUrls:
        """The running servers' URLs."""
        if not (self.postgres and self.redis and self.seaweedfs):
            raise LocalStackError("the local stack is not running")
        return StackUrls(self.postgres.url, self.redis.url, self.seaweedfs.endpoint_url)

    def _acquire_lock(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        handle = (self.var_dir / "stack.lock").open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            state = _read_state(self.var_dir) or {}
            owner = state.get("owner", {}).get("pid", "unknown")
            raise LocalStackError(
                f"a local stack is already running on {self.var_dir} (pid {owner}); "
                "use it (other commands find it automatically) or stop it first"
            ) from None
        self._lock = handle

    def _write_state(self) -> None:
        owner = ProcessRecord.of(os.getpid())
        state = {
            "owner": asdict(owner),
            "servers": {name: asdict(rec) for name, rec in self.records.items()},
            "urls": asdict(self.urls),
        }
        tmp = _state_file(self.var_dir).with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
        tmp.replace(_state_file(self.var_dir))

    def start(self) -> StackUrls:
        """Sweep leftovers, start all three servers, wait for them, record them."""
        self._acquire_lock()
        try:
            sweep_stale(self.var_dir, self.on_event)
            self.postgres = LocalPostgres(
                self.var_dir / "postgres", socket_dir=self.var_dir / "run"
            )
            self.fresh_database = not self.postgres.initialised()
            self.redis = LocalRedis(self.var_dir / "redis")
            self.seaweedfs = SeaweedFS(
                self.var_dir / "seaweedfs",
                access_key=self.settings.s3_access_key,
                secret_key=self.settings.s3_secret_key.get_secret_value(),
            )
            # Spawn all three from this thread (the parent-death signal follows the
            # spawning thread), then wait for each: their start-ups overlap.
            self.on_event(
                "postgres",
                "starting PostgreSQL" + (" (first run: initdb)" if self.fresh_database else ""),
            )
            self.records["postgres"] = self.postgres.start()
            self.on_event("redis", "starting Redis")
            self.records["redis"] = self.redis.start()
            self.on_event("seaweedfs", "starting SeaweedFS S3")
            self.records["seaweedfs"] = self.seaweedfs.launch()
            self._write_state()
            self.postgres.wait_ready()
            self.on_event("postgres", f"PostgreSQL ready on 127.0.0.1:{self.postgres.port}")
            self.redis.wait_ready()
            self.on_event("redis", f"Redis ready on 127.0.0.1:{self.redis.port}")
            self.seaweedfs.wait_ready()
            self.on_event("seaweedfs", f"SeaweedFS S3 ready on {self.seaweedfs.endpoint_url}")
        except BaseException:
            self.stop()
            raise
        return self.urls

    def stop(self) -> None:
        """Stop every server this stack started and forget them; safe to call twice."""
        for name in ("seaweedfs", "redis", "postgres"):
            record = self.records.pop(name, None)
            if record is not None:
                self.on_event(name, f"stopping {name}")
                stop(record, sig=STOP_SIGNALS[name])
        _state_file(self.var_dir).unlink(missing_ok=True)
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

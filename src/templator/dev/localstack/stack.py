"""The embedded local stack of `templator up`: PostgreSQL, Redis and SeaweedFS under var/.

`var/stack.json` records every server's pid (with its start time and program name, so a
reused pid is never mistaken for ours), its URL, and the pid of the owning process. A lock
on `var/stack.lock` keeps two stacks off the same folder. Before starting, servers left
behind by an owner that died (killed, crashed) are stopped: that sweep, not the
best-effort parent-death signal, is what guarantees no orphan servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson

from templator.config import Settings
from templator.dev.localstack.postgres import LocalPostgres
from templator.dev.localstack.process import (
    LocalStackError,
    ProcessRecord,
    free_port,
    is_alive,
    stop,
)
from templator.dev.localstack.redis import LocalRedis
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.dev.localstack.secrets import StackSecrets, read_secret, secret_file

T = TypeVar("T")
EventHandler = Callable[[str, str], None]
LABELS = {"postgres": "PostgreSQL", "redis": "Redis", "seaweedfs": "SeaweedFS S3"}
STOP_SIGNALS = {"postgres": signal.SIGINT, "redis": signal.SIGTERM, "seaweedfs": signal.SIGTERM}


@dataclass(frozen=True, slots=True)
class StackUrls:
    """Where the local servers listen (URLs with their passwords, read from var/secrets)."""

    database_url: str
    redis_url: str
    s3_endpoint_url: str
    cache_signing_key_file: Path | None = None
    admin_database_url: str | None = None
    s3_keys: tuple[str, str] | None = None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def _with_password(url: str, password: str | None) -> str:
    if password is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{password}@{host}"))


class StackAlreadyRunning(LocalStackError):
    """Another process owns the local stack on this var folder."""

    def __init__(self, var_dir: Path, pid: int | None) -> None:
        self.pid = pid
        super().__init__(
            f"a local stack is already running (pid {pid or 'unknown'}) on {var_dir}: "
            "use it (other commands find it on their own) or stop it first"
        )


def _state_file(var_dir: Path) -> Path:
    return var_dir / "stack.json"


def _read_state(var_dir: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(_state_file(var_dir).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _record(data: object) -> ProcessRecord | None:
    if not isinstance(data, dict):
        return None
    try:
        return ProcessRecord(
            int(data["pid"]), float(data["create_time"]), str(data.get("name", ""))
        )
    except (KeyError, TypeError, ValueError):
        return None


def _live_owner(state: dict[str, Any]) -> ProcessRecord | None:
    owner = _record(state.get("owner"))
    return owner if owner is not None and is_alive(owner) else None


def discover_running_stack(var_dir: Path) -> StackUrls | None:
    """The URLs of the stack a live `templator up` runs on `var_dir`, or None."""
    state = _read_state(var_dir)
    if state is None or _live_owner(state) is None:
        return None
    urls = state.get("urls")
    if not isinstance(urls, dict):
        return None
    secrets = StackSecrets(var_dir)
    try:
        admin = urls.get("admin_database_url")
        return StackUrls(
            database_url=_with_password(
                str(urls["database_url"]), read_secret(secrets.postgres_app)
            ),
            redis_url=_with_password(str(urls["redis_url"]), read_secret(secrets.redis)),
            s3_endpoint_url=str(urls["s3_endpoint_url"]),
            cache_signing_key_file=(
                secrets.cache_signing_key if secrets.cache_signing_key.exists() else None
            ),
            admin_database_url=(
                _with_password(str(admin), read_secret(secrets.postgres_owner)) if admin else None
            ),
            s3_keys=secrets.s3_keys(),
        )
    except KeyError:
        return None


def _stop_recorded(state: dict[str, Any], on_event: EventHandler) -> list[str]:
    servers = state.get("servers")
    orphans: dict[str, ProcessRecord] = {}
    for name, data in (servers if isinstance(servers, dict) else {}).items():
        record = _record(data)
        if record is not None and is_alive(record):
            on_event(name, f"stopping orphan {LABELS.get(name, name)} (pid {record.pid})")
            orphans[name] = record
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="stack-sweep") as pool:
        for name, record in orphans.items():
            pool.submit(stop, record, sig=STOP_SIGNALS.get(name, signal.SIGTERM))
    return list(orphans)


def sweep_stale(var_dir: Path, on_event: EventHandler | None = None) -> list[str]:
    """Stop the servers of a stack whose owner is gone; return their names."""
    state = _read_state(var_dir)
    if state is None or _live_owner(state) is not None:
        return []
    stopped = _stop_recorded(state, on_event or _ignore)
    _state_file(var_dir).unlink(missing_ok=True)
    return stopped


def _ignore(name: str, message: str) -> None:
    """The default progress callback."""


class LocalStack:
    """Start, record and stop the three local servers as one unit."""

    def __init__(self, settings: Settings, *, on_event: EventHandler | None = None) -> None:
        self.settings = settings
        self.var_dir = settings.var_dir
        self.on_event = on_event or _ignore
        self._lock: IO[bytes] | None = None
        self.records: dict[str, ProcessRecord] = {}
        self.postgres: LocalPostgres | None = None
        self.redis: LocalRedis | None = None
        self.seaweedfs: SeaweedFS | None = None
        self.fresh_database = False
        self.secrets = StackSecrets(self.var_dir)

    @property
    def urls(self) -> StackUrls:
        """The servers' URLs (known once start() has chosen the ports)."""
        if not (self.postgres and self.redis and self.seaweedfs):
            raise LocalStackError("the local stack is not running")
        return StackUrls(
            self.postgres.url,
            self.redis.url,
            self.seaweedfs.endpoint_url,
            cache_signing_key_file=self.secrets.cache_signing_key,
            admin_database_url=self.postgres.admin_url,
            s3_keys=(self.seaweedfs.access_key, self.seaweedfs.secret_key),
        )

    def _acquire_lock(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        handle = (self.var_dir / "stack.lock").open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().decode(errors="replace").strip()
            handle.close()
            raise StackAlreadyRunning(self.var_dir, int(text) if text.isdigit() else None) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._lock = handle

    def _release_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.truncate(0)
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _sweep(self) -> None:
        """Stop what a dead owner left; refuse if the recorded owner still lives."""
        state = _read_state(self.var_dir)
        if state is None:
            return
        owner = _live_owner(state)
        if owner is not None and owner.pid != os.getpid():
            # Only possible when stack.lock was deleted under a running stack.
            raise StackAlreadyRunning(self.var_dir, owner.pid)
        _stop_recorded(state, self.on_event)
        _state_file(self.var_dir).unlink(missing_ok=True)

    def _write_state(self) -> None:
        state = {
            "owner": asdict(ProcessRecord.of(os.getpid())),
            "servers": {name: asdict(record) for name, record in self.records.items()},
            # No secret in here: discovery reads them from var/secrets (0600).
            "urls": {
                "database_url": _without_password(self.urls.database_url),
                "admin_database_url": _without_password(self.postgres.admin_url)
                if self.postgres
                else None,
                "redis_url": _without_password(self.urls.redis_url),
                "s3_endpoint_url": self.urls.s3_endpoint_url,
            },
        }
        target = _state_file(self.var_dir)
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("wb") as out:
            out.write(orjson.dumps(state, option=orjson.OPT_INDENT_2))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(target)

    def _spawned(self, name: str, record: ProcessRecord) -> None:
        """Record a spawned server at once, so even a crash right now leaves no orphan."""
        self.records[name] = record
        self._write_state()

    def record_restart(self, name: str, record: ProcessRecord) -> None:
        """Record a server the supervisor started again (localstack/supervisor.py)."""
        self._spawned(name, record)

    def _ready_on_a_free_port(
        self, name: str, label: str, server: LocalPostgres | LocalRedis, *, tries: int = 3
    ) -> None:
        """Wait for `server`; when its port was taken between choosing it and binding it
        (PostgreSQL's initdb takes seconds, and other programs pick free ports too: seen in
        CI as "could not bind … Address already in use"), start it on another one."""
        for attempt in range(1, tries + 1):
            try:
                server.wait_ready()
                return
            except LocalStackError as exc:
                if "Address already in use" not in str(exc) or attempt == tries:
                    raise
            server.port = free_port()
            self.on_event(name, f"{label}'s port was taken meanwhile: starting it on {server.port}")
            self._step(name, lambda: self._spawned(name, server.start()))

    def _step(self, name: str, action: Callable[[], T]) -> T:
        """Run one start-up step; failures name the server."""
        try:
            return action()
        except LocalStackError:
            raise
        except OSError as exc:
            raise LocalStackError(f"could not start {LABELS[name]}: {exc}") from exc

    def _spawn_seaweedfs(self, seaweedfs: SeaweedFS) -> bool:
        """Spawn SeaweedFS without waiting when it allows; True when it still needs a wait."""
        launch = getattr(seaweedfs, "launch", None)
        if launch is None or not hasattr(seaweedfs, "wait_ready"):
            return False
        launch()
        if seaweedfs.pid is not None:
            self._spawned("seaweedfs", ProcessRecord.of(seaweedfs.pid))
        return True

    def start(self) -> StackUrls:
        """Sweep leftovers, start all three servers side by side, wait for them, record them."""
        self._acquire_lock()
        try:
            self._sweep()
        except BaseException:
            self._release_lock()  # nothing of ours to stop, and stack.json is not ours
            raise
        try:
            self.postgres = LocalPostgres(
                self.var_dir / "postgres", socket_dir=self.var_dir / "run"
            )
            secret_file(self.secrets.cache_signing_key)
            self.redis = LocalRedis(
                self.var_dir / "redis", password=secret_file(self.secrets.redis)
            )
            # Keys of this stack's own (not the settings' well-known defaults), so no
            # other local account can use its object store (docs/security.md).
            self.seaweedfs = SeaweedFS(
                self.var_dir / "seaweedfs",
                access_key=secret_file(self.secrets.s3_access_key),
                secret_key=secret_file(self.secrets.s3_secret_key),
            )
            postgres, redis, seaweedfs = self.postgres, self.redis, self.seaweedfs
            self.fresh_database = not postgres.initialised()
            # Spawn everything from this thread (a parent-death signal follows the spawning
            # thread), slowest first, so initdb overlaps the others' start-up.
            self.on_event("seaweedfs", "starting SeaweedFS S3")
            launched = self._step("seaweedfs", lambda: self._spawn_seaweedfs(seaweedfs))
            self.on_event("redis", "starting Redis")
            self._step("redis", lambda: self._spawned("redis", redis.start()))
            first = " (first run: initdb)" if self.fresh_database else ""
            self.on_event("postgres", f"starting PostgreSQL{first}")
            self._step("postgres", lambda: self._spawned("postgres", postgres.start()))
            if not launched:  # a SeaweedFS without launch(): start() blocks until ready
                self._step("seaweedfs", seaweedfs.start)
                if seaweedfs.pid is not None:
                    self._spawned("seaweedfs", ProcessRecord.of(seaweedfs.pid))
            self._ready_on_a_free_port("postgres", "PostgreSQL", postgres)
            self.on_event("postgres", f"PostgreSQL ready on 127.0.0.1:{postgres.port}")
            self._ready_on_a_free_port("redis", "Redis", redis)
            self.on_event("redis", f"Redis ready on 127.0.0.1:{redis.port}")
            if launched:
                seaweedfs.wait_ready()
            self.on_event("seaweedfs", f"SeaweedFS S3 ready on {seaweedfs.endpoint_url}")
        except BaseException:
            self.stop()
            raise
        return self.urls

    def stop(self) -> None:
        """Stop every server this stack started, side by side; safe to call twice."""
        if self._lock is None:
            return
        servers: list[tuple[str, Callable[[], None]]] = []
        if self.seaweedfs is not None:
            servers.append(("seaweedfs", self.seaweedfs.stop))
        if self.redis is not None:
            servers.append(("redis", self.redis.stop))
        if self.postgres is not None:
            servers.append(("postgres", self.postgres.stop))
        for name, _ in servers:
            # Name only what still runs: a server that died is not "stopped" by us.
            if name in self.records and is_alive(self.records[name]):
                self.on_event(name, f"stopping {LABELS[name]}")
        errors: list[str] = []
        # Each stop() is a no-op for a server that never started.
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="stack-stop") as pool:
            futures = {name: pool.submit(halt) for name, halt in servers}
        for name, future in futures.items():
            if (exc := future.exception()) is not None:
                errors.append(f"{LABELS[name]}: {exc}")
        # Whatever survived its own stop() (e.g. launched but not tracked) goes by record.
        for name, record in self.records.items():
            if is_alive(record):
                stop(record, sig=STOP_SIGNALS[name])
        self.records.clear()
        _state_file(self.var_dir).unlink(missing_ok=True)
        self._release_lock()
        if errors:
            raise LocalStackError("stopping the local stack failed: " + "; ".join(errors))

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

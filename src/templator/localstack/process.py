"""Process plumbing shared by the local servers: ports, readiness, identity-checked stops."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


class LocalStackError(RuntimeError):
    """A local server could not be started or stopped."""


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """Enough to find a process again and be sure it is still the same one."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        """Record a running process."""
        return cls(pid, psutil.Process(pid).create_time())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (whose +10000 gRPC twin is free too)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port + 10000 < 65536 and port_is_free(host, port + 10000):
            return port
    raise LocalStackError("no free TCP port found")


def port_is_free(host: str, port: int) -> bool:
    """True when nothing is bound to host:port."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(
    ready: Callable[[], bool],
    *,
    process: subprocess.Popen[bytes],
    timeout: float,
    what: str,
    log: Path,
) -> None:
    """Poll `ready` until true; fail early, with the log tail, if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackError(
                f"{what} exited with code {process.returncode} while starting; "
                f"last lines of {log}:\n{log_tail(log)}"
            )
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.1)
    raise LocalStackError(f"{what} did not become ready within {timeout:g}s; see {log}")


def port_answers(host: str, port: int) -> bool:
    """True when a TCP connection to host:port succeeds."""
    with socket.create_connection((host, port), timeout=0.5):
        return True


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A preexec_fn asking Linux to send `sig` to the child when its parent thread dies.

    A convenience only: the real guarantee against orphans is the stale-stack sweep
    that every `templator up` runs before it starts anything.
    """

    def preexec() -> None:
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(sig))

    return preexec


def is_alive(record: ProcessRecord) -> bool:
    """True when the recorded process still runs and is the same process (not a reused pid)."""
    try:
        process = psutil.Process(record.pid)
        return (
            abs(process.create_time() - record.create_time) < 0.01
            and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def stop(
    record: ProcessRecord, *, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0
) -> None:
    """Send `sig`, wait, then SIGKILL; never touches a pid that now belongs to another process."""
    if not is_alive(record):
        return
    try:
        process = psutil.Process(record.pid)
        process.send_signal(sig)
        process.wait(timeout)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            process.kill()
            process.wait(5)
    except psutil.Error:
        return


def drop_privileges_user() -> str | None:
    """The account servers that refuse root (PostgreSQL) run as, or None when not root."""
    return "postgres" if os.geteuid() == 0 else None

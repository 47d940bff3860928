"""Process plumbing shared by the local servers: ports, readiness, identity-checked stops.

Every server is started in a session (and process group) of its own, so a Ctrl-C meant
for `templator up` does not reach it and a stop can take its whole group down. A pid is
only ever signalled after checking it is still the process we started (same start time
and program name): a pid the kernel has since recycled for something else is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

# Re-exported: the servers here import them from this module.
from templator.kit.process import die_with_parent as die_with_parent
from templator.kit.process import drop_privileges_user as drop_privileges_user

_CREATE_TIME_TOLERANCE = 0.01


class LocalStackError(RuntimeError):
    """A local server could not be started or stopped."""


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """Enough to find a process again and be sure it is still the same one."""

    pid: int
    create_time: float
    name: str = ""

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        """Record a running process."""
        process = psutil.Process(pid)
        return cls(pid, process.create_time(), process.name())


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


def port_answers(host: str, port: int) -> bool:
    """True when a TCP connection to host:port succeeds."""
    with socket.create_connection((host, port), timeout=0.5):
        return True


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


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
        time.sleep(0.05)
    raise LocalStackError(
        f"{what} did not become ready within {timeout:g}s; last lines of {log}:\n{log_tail(log)}"
    )


def is_alive(record: ProcessRecord) -> bool:
    """True when the recorded process still runs and is the same process (not a reused pid)."""
    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.create_time) >= _CREATE_TIME_TOLERANCE:
            return False
        if record.name and process.name() != record.name:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _leads_own_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _kill_group(pid: int) -> None:
    """SIGKILL a whole process group we started (a PostgreSQL postmaster and its backends)."""
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def stop(
    record: ProcessRecord, *, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0
) -> None:
    """Send `sig`, wait, then SIGKILL its process group; a recycled pid is never touched."""
    if not is_alive(record):
        return
    own_group = _leads_own_group(record.pid)
    try:
        process = psutil.Process(record.pid)
        process.send_signal(sig)
        process.wait(timeout)
    except psutil.TimeoutExpired:
        # The leader still runs, so its pid is still the group's id: the group is ours.
        if own_group:
            _kill_group(record.pid)
        with contextlib.suppress(psutil.Error):
            process.kill()
            process.wait(5)
    except psutil.Error:
        return

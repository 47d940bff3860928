"""The supervisor's own rules, on real child processes: reap at once, one line per event,
a delay that doubles while restarts fail, the shortest delay again once a server was up
long enough. (The drills in tests/resilience run it on the real servers.)"""

from __future__ import annotations

import signal
import subprocess
import time

import psutil

from templator.dev.localstack.process import LocalStackError, ProcessRecord, die_with_parent
from templator.dev.localstack.supervisor import Supervisor, describe_exit


class Sleeper:
    """A server stand-in: a real `sleep` process, whose restarts fail `failures` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(["sleep", "60"])

    def start(self) -> ProcessRecord:
        if self.failures > 0:
            self.failures -= 1
            raise LocalStackError("port 6379 is taken\nsecond line of detail")
        self.process = subprocess.Popen(["sleep", "60"])
        return ProcessRecord.of(self.process.pid)

    def wait_ready(self, timeout: float) -> None:
        """Up at once."""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class MortalSleeper(Sleeper):
    """A stand-in that starts like the real servers: with the parent-death signal."""

    def start(self) -> ProcessRecord:
        self.process = subprocess.Popen(["sleep", "60"], preexec_fn=die_with_parent(signal.SIGKILL))
        return ProcessRecord.of(self.process.pid)


class Stack:
    """What the supervisor uses of a LocalStack."""

    def __init__(self, redis: Sleeper) -> None:
        self.redis = redis
        self.postgres = None
        self.seaweedfs = None
        self.recorded: list[ProcessRecord] = []

    def record_restart(self, name: str, record: ProcessRecord) -> None:
        self.recorded.append(record)


def _wait(events: list[tuple[str, str]], fragment: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(fragment in message for _, message in events):
            return
        time.sleep(0.02)
    raise AssertionError(f"no event with {fragment!r}: {events}")


def test_a_dead_server_is_reaped_and_restarted_with_a_doubling_delay() -> None:
    events: list[tuple[str, str]] = []
    sleeper = Sleeper(failures=2)
    stack = Stack(sleeper)
    supervisor = Supervisor(
        stack,  # type: ignore[arg-type]
        on_event=lambda name, message: events.append((name, message)),
        interval=0.02,
        first_delay=0.1,
        max_delay=1.0,
    )
    first = sleeper.process
    assert first is not None
    with supervisor:
        first.kill()
        _wait(events, "Redis restarted")
    messages = [message for _, message in events]
    assert messages == [
        f"Redis (pid {first.pid}) killed by SIGKILL; restarting in 0.1s",
        "Redis restart failed (port 6379 is taken); retrying in 0.2s",
        "Redis restart failed (port 6379 is taken); retrying in 0.4s",
        f"Redis restarted (pid {stack.recorded[0].pid})",
    ]
    # Reaped: the dead child is gone, not a zombie holding its pid.
    assert first.returncode == -9 and not psutil.pid_exists(first.pid)
    assert supervisor.states["redis"].restarts == 1
    sleeper.stop()


def test_a_server_that_was_up_long_enough_starts_again_from_the_shortest_delay() -> None:
    events: list[tuple[str, str]] = []
    sleeper = Sleeper(failures=0)
    supervisor = Supervisor(
        Stack(sleeper),  # type: ignore[arg-type]
        on_event=lambda name, message: events.append((name, message)),
        interval=0.02,
        first_delay=0.05,
        stable_after=0.3,
    )
    with supervisor:
        for _ in range(2):  # dies again at once: the delay doubles
            assert sleeper.process is not None
            sleeper.process.kill()
            restarts = supervisor.states["redis"].restarts
            while supervisor.states["redis"].restarts == restarts:
                time.sleep(0.02)
        time.sleep(0.4)  # then stays up longer than stable_after
        assert sleeper.process is not None
        sleeper.process.kill()
        deadline = time.monotonic() + 5
        while len(events) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
    delays = [m.rsplit("restarting in ", 1)[1] for _, m in events if "restarting in" in m]
    assert delays == ["0.05s", "0.1s", "0.05s"], events
    sleeper.stop()


def test_a_server_the_supervisor_restarted_dies_with_the_thread_that_spawned_it() -> None:
    """Linux sends the parent-death signal when the spawning thread ends: the supervisor's
    thread ends only when the stack stops, so its restarts keep the signal (they had none,
    and outlived a killed `templator up`)."""
    sleeper = MortalSleeper(failures=0)
    first = sleeper.process
    assert first is not None
    with Supervisor(Stack(sleeper), interval=0.02, first_delay=0.05) as supervisor:  # type: ignore[arg-type]
        first.kill()
        deadline = time.monotonic() + 10
        while supervisor.states["redis"].restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        restarted = sleeper.process
        assert restarted is not None and restarted.poll() is None
    # The supervisor's thread has ended: the restarted server goes with it.
    try:
        assert restarted.wait(10) == -signal.SIGKILL
    finally:
        sleeper.stop()


def test_exits_are_described_by_code_or_signal() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-15) == "killed by SIGTERM"
    assert describe_exit(-200) == "killed by signal 200"

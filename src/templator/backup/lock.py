"""The repository lock: create, prune, restore and verify --drill never overlap.

An exclusive `flock` on a file, like pgBackRest's lock files: the kernel drops it when
the holder dies (even by SIGKILL), so a crash never leaves a stale lock behind. The
holder writes its pid and command into the file so a refusal can say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from templator.backup.errors import BackupInProgress


@contextlib.contextmanager
def repository_lock(path: Path, *, command: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock at `path` for the block; wait up to `wait` seconds, then refuse."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    raise BackupInProgress(
                        f"the backup repository is locked by another command ({holder or '?'}):"
                        f" {command} refused; retry when it ends, or pass --wait SECONDS"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} {command}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock

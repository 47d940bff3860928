"""prometheus-client's multiprocess mode for several uvicorn workers: the shared folder.

Kept free of heavy imports: `templator serve` prepares the folder before any worker (and
before prometheus_client itself) is loaded, and every worker inherits the environment.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    """The multiprocess folder when multiprocess mode is on."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def prepare_multiprocess_dir(folder: Path) -> None:
    """Create `folder` or empty it of a previous run's files, and point the environment at
    it (before the workers start, so every one of them inherits it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)


@contextmanager
def multiprocess_mode(workers: int, *, var_dir: Path) -> Iterator[Path | None]:
    """Multiprocess mode for the duration of a server run, when it has several workers or
    PROMETHEUS_MULTIPROC_DIR is set: the operator's folder is emptied first; without one,
    a folder of this run's own under `var_dir` is made, and removed afterwards."""
    given = multiprocess_dir()
    if given is None and workers <= 1:
        yield None
        return
    folder = given or var_dir / "metrics" / f"serve-{os.getpid()}"
    prepare_multiprocess_dir(folder)
    try:
        yield folder
    finally:
        if given is None:
            shutil.rmtree(folder, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


_PID = re.compile(r"_(\d+)\.db$")


def reap_dead_processes(folder: Path) -> list[int]:
    """mark_process_dead for every process whose live-gauge files remain but that is gone."""
    dead = []
    for path in folder.glob("gauge_live*_*.db"):
        match = _PID.search(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
            dead.append(pid)
        except PermissionError:
            continue  # alive, someone else's
    return sorted(set(dead))

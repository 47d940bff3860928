"""pgAdmin 4's own virtual environment: created once (about a minute, ~620 MB), reused.

pgAdmin pins its own Flask, SQLAlchemy, psycopg… so it never shares our environment.
An install counts only once its marker file is written: one interrupted half-way is
removed and made again on the next start.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PGADMIN_VERSION = "9.18"
"""The pgAdmin 4 release from PyPI; the compose file's dpage/pgadmin4 image matches it."""

_MARKER = ".templator-pgadmin"


class PgAdminInstallError(Exception):
    """The environment could not be made; the message says why and what to do."""


def python_of(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / "bin" / "python"


def installed_version(venv: Path) -> str | None:
    """The pgAdmin version a completed install holds, or None."""
    marker = venv / _MARKER
    return marker.read_text().strip() if marker.is_file() else None


def package_dir(venv: Path) -> Path:
    """Where pgAdmin4.py and setup.py are, inside the environment."""
    found = sorted(venv.glob("lib/python3*/site-packages/pgadmin4/pgAdmin4.py"))
    if not found:
        raise PgAdminInstallError(f"pgAdmin is not installed in {venv}")
    return found[0].parent


def _commands(venv: Path, version: str) -> list[list[str]]:
    uv = shutil.which("uv")
    requirement = f"pgadmin4=={version}"
    if uv:
        return [
            [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
            [uv, "pip", "install", "--python", str(python_of(venv)), requirement],
        ]
    return [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python_of(venv)), "-m", "pip", "install", "--progress-bar", "off", requirement],
    ]


def ensure_installed(
    venv: Path,
    *,
    version: str = PGADMIN_VERSION,
    on_line: Callable[[str], None] = lambda line: None,
) -> bool:
    """Install pgAdmin `version` into `venv` unless it is there; True if it installed.

    Each line the installer prints goes to `on_line` (the CLI shows it as progress).
    """
    if installed_version(venv) == version:
        return False
    if venv.exists():
        shutil.rmtree(venv)  # an interrupted or older install: start clean
    venv.parent.mkdir(parents=True, exist_ok=True)
    for command in _commands(venv, version):
        on_line(" ".join(Path(command[0]).name if i == 0 else a for i, a in enumerate(command)))
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        tail: list[str] = []
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail = [*tail[-19:], line]
                on_line(line)
        if process.wait() != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise PgAdminInstallError(
                f"installing pgadmin4=={version} failed (exit {process.returncode}); is PyPI "
                "reachable? Last lines:\n" + "\n".join(tail[-8:])
            )
    package_dir(venv)  # the install really holds pgAdmin
    (venv / _MARKER).write_text(version + "\n")
    return True

"""pg_dump / pg_restore, run as argument lists with credentials in the environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from templator.backup.errors import BackupToolFailed


def libpq_env(url: str, *, app: str = "templator-backup") -> dict[str, str]:
    """The environment that points libpq tools at `url`; the password never hits argv."""
    parsed = make_url(url)
    env = dict(os.environ)
    for key in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE"):
        env.pop(key, None)
    host = parsed.host or str(parsed.query.get("host") or "")
    if host:
        env["PGHOST"] = host
    if parsed.port:
        env["PGPORT"] = str(parsed.port)
    if parsed.username:
        env["PGUSER"] = parsed.username
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    env["PGDATABASE"] = parsed.database or ""
    env["PGAPPNAME"] = app
    env["PGCONNECT_TIMEOUT"] = "5"
    return env


def find_tool(name: str, *, server_major: int) -> str:
    """The newest installed `name` whose major version is at least the server's."""
    candidates: list[tuple[int, str]] = []
    for folder in Path("/usr/lib/postgresql").glob("*/bin"):
        if folder.parent.name.isdigit() and (folder / name).exists():
            candidates.append((int(folder.parent.name), str(folder / name)))
    found = shutil.which(name)
    if found:
        version = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"(\d+)\.", version.stdout)
        if match:
            candidates.append((int(match.group(1)), found))
    usable = sorted(c for c in candidates if c[0] >= server_major)
    if not usable:
        raise BackupToolFailed(
            f"no {name} of version {server_major} or newer is installed: install the "
            f"postgresql-client-{server_major} package (Debian) or put one on PATH"
        )
    return usable[-1][1]


def run_tool(args: list[str], *, env: dict[str, str], what: str) -> None:
    """Run a tool; a failure raises BackupToolFailed with its last lines of stderr."""
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise BackupToolFailed(f"{what} failed (exit {result.returncode}): {tail}")

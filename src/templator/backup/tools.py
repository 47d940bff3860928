"""External tools (pg_dump, pg_restore, pgbackrest): minimal environment, supervised.

Each tool runs as an argument list under `supervisor.py`, which leads a process group
of its own and kills that whole group when the command that started it dies, however it
dies. The tool sees only the variables it needs: PATH, a locale, and the libpq ones
derived from DATABASE_URL (TLS settings included) — never S3 keys or anything else of
ours, which would otherwise be readable in its /proc/PID/environ.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from templator.backup.errors import BackupToolFailed

SUPERVISOR = Path(__file__).with_name("supervisor.py")

# DATABASE_URL query parameters and the libpq variables that carry them.
_LIBPQ_QUERY = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "sslcompression": "PGSSLCOMPRESSION",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "requirepeer": "PGREQUIREPEER",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "passfile": "PGPASSFILE",
    "options": "PGOPTIONS",
    "krbsrvname": "PGKRBSRVNAME",
}


def base_env() -> dict[str, str]:
    """The variables every tool gets: where programs are, and a locale."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def libpq_env(
    url: str, *, app: str = "templator-backup", database: str | None = None
) -> dict[str, str]:
    """A minimal environment pointing libpq tools at `url`; the password never hits argv."""
    parsed = make_url(url)
    env = base_env()
    host = parsed.host or str(parsed.query.get("host") or "")
    if host:
        env["PGHOST"] = host
    if parsed.port:
        env["PGPORT"] = str(parsed.port)
    if parsed.username:
        env["PGUSER"] = parsed.username
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    for name, variable in _LIBPQ_QUERY.items():
        value = parsed.query.get(name)
        if value:
            env[variable] = str(value if isinstance(value, str) else value[-1])
    env["PGDATABASE"] = database or parsed.database or ""
    env["PGAPPNAME"] = app
    env["PGCONNECT_TIMEOUT"] = "5"
    return env


def libpq_dsn(url: str, *, database: str | None = None) -> str:
    """A psycopg/libpq connection string for `url` (TLS query parameters kept)."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


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


def tool_version(tool: str) -> str:
    """`tool --version`'s first line."""
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout.strip().splitlines() or ["?"])[0]


def run_tool(
    args: list[str],
    *,
    env: dict[str, str],
    what: str,
    on_tick: Callable[[], None] | None = None,
    user: str | None = None,
    stdout: int | None = None,
) -> str:
    """Run a supervised tool; returns its stdout (when captured); failure names its stderr."""
    user_arg = [user] if user else []
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-I", str(SUPERVISOR), str(os.getpid()), *user_arg, "--", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out if stdout is None else stdout,
            stderr=err,
            start_new_session=True,
        )
        try:
            while True:
                try:
                    code = process.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    if on_tick is not None:
                        on_tick()
        except BaseException:
            process.terminate()  # the supervisor kills the tool's whole group
            process.wait()
            raise
        err.seek(0)
        tail = " | ".join(err.read().decode(errors="replace").strip().splitlines()[-3:])
        out.seek(0)
        text = out.read().decode(errors="replace")
    if code != 0:
        raise BackupToolFailed(f"{what} failed (exit {code}): {tail}")
    return text

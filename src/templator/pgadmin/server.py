"""pgAdmin in desktop mode: its configuration, our server registered, the process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from templator.kit.process import die_with_parent
from templator.pgadmin.install import package_dir, python_of

SERVER_NAME = "Templator"


class PgAdminError(Exception):
    """pgAdmin could not be configured or started; the message says why."""


@dataclass(frozen=True, slots=True)
class PgAdminPaths:
    """Where pgAdmin keeps its state: everything under `data` (our var/ folder)."""

    venv: Path
    data: Path

    @property
    def config(self) -> Path:
        return self.data / "config_templator.py"

    @property
    def servers(self) -> Path:
        return self.data / "servers.json"

    @property
    def passfile(self) -> Path:
        return self.data / "pgpass"

    @property
    def log(self) -> Path:
        return self.data / "pgadmin-server.log"


def write_config(paths: PgAdminPaths, *, port: int) -> None:
    """Desktop mode (no login), no master password, data under `paths.data`, loopback only.

    pgAdmin reads it as its distribution configuration (CONFIG_DISTRO_FILE_PATH), so the
    installed package stays untouched and one install serves any number of data folders.
    """
    paths.data.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "SERVER_MODE": False,
        "MASTER_PASSWORD_REQUIRED": False,
        "DATA_DIR": str(paths.data),
        "DEFAULT_SERVER": "127.0.0.1",
        "DEFAULT_SERVER_PORT": port,
        "UPGRADE_CHECK_ENABLED": False,
        "CONSOLE_LOG_LEVEL": 30,
        "FILE_LOG_LEVEL": 30,
    }
    lines = ["# Written by `templator pgadmin`; rewritten at every start."]
    lines += [f"{key} = {value!r}" for key, value in settings.items()]
    paths.config.write_text("\n".join(lines) + "\n")


def server_entry(database_url: str, paths: PgAdminPaths) -> dict[str, Any]:
    """pgAdmin's servers.json entry of a PostgreSQL URL; the password goes to a pgpass
    file (mode 0600) that the entry names, never into servers.json."""
    url = make_url(database_url)
    entry: dict[str, Any] = {
        "Name": SERVER_NAME,
        "Group": SERVER_NAME,
        "Host": url.host or str(url.query.get("host", "127.0.0.1")),
        "Port": url.port or 5432,
        "MaintenanceDB": url.database or "postgres",
        "Username": url.username or "postgres",
        # Only our database in the tree, not every one on a shared server.
        "DBRestriction": url.database or "",
        "ConnectionParameters": {
            "sslmode": str(url.query.get("sslmode", "prefer")),
            "connect_timeout": 10,
        },
    }
    if "sslrootcert" in url.query:
        entry["ConnectionParameters"]["sslrootcert"] = str(url.query["sslrootcert"])
    # Always a pgpass file, even without a password (a `trust` server such as the local
    # stack's never asks for it): pgAdmin skips its password prompt for an entry that
    # names one.
    fd = os.open(paths.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        fields = (entry["Host"], entry["Port"], "*", entry["Username"], url.password or "")
        escaped = [str(v).replace("\\", "\\\\").replace(":", "\\:") for v in fields]
        out.write(":".join(escaped) + "\n")
    entry["ConnectionParameters"]["passfile"] = str(paths.passfile)
    return entry


def _env(paths: PgAdminPaths) -> dict[str, str]:
    env = {**os.environ, "CONFIG_DISTRO_FILE_PATH": str(paths.config)}
    for name in ("PGADMIN_INT_KEY", "PGADMIN_INT_PORT", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)  # desktop-runtime variables would demand a key in every URL
    return env


def register_server(paths: PgAdminPaths, database_url: str) -> None:
    """Load our server into pgAdmin's own database (replacing what an earlier start put)."""
    paths.servers.write_text(
        json.dumps({"Servers": {"1": server_entry(database_url, paths)}}, indent=2) + "\n"
    )
    if not (paths.data / "pgadmin4.db").exists():
        _setup(paths, "setup-db")  # pgAdmin's own SQLite database, made once
    result = _setup(paths, "load-servers", str(paths.servers), "--replace")
    # setup.py reports its errors on stdout and exits 0: look for its success line.
    if "Added" not in result.stdout:
        raise PgAdminError(f"pgAdmin did not register the server: {result.stdout.strip()}")


def _setup(paths: PgAdminPaths, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pgAdmin's setup.py command line with our configuration."""
    setup = package_dir(paths.venv) / "setup.py"
    result = subprocess.run(
        [str(python_of(paths.venv)), str(setup), *args],
        env=_env(paths),
        cwd=paths.data,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-10:]
        raise PgAdminError(f"pgAdmin's setup.py {args[0]} failed: " + "\n".join(output))
    return result


def start(paths: PgAdminPaths) -> subprocess.Popen[bytes]:
    """Start pgAdmin (its output appended to `paths.log`)."""
    script = package_dir(paths.venv) / "pgAdmin4.py"
    with paths.log.open("ab") as log:
        return subprocess.Popen(
            [str(python_of(paths.venv)), str(script)],
            env=_env(paths),
            cwd=paths.data,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # A killed `templator pgadmin` takes pgAdmin with it (Linux).
            preexec_fn=die_with_parent(signal.SIGTERM),
        )


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    """Until pgAdmin answers its ping; a clear error with its log tail if it exits or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/misc/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
    state = f"exited with {process.returncode}" if process.poll() is not None else "no answer"
    raise PgAdminError(f"pgAdmin did not start ({state} after {timeout:g}s); log {log}:\n{tail}")


def stop(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """Terminate pgAdmin, then kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

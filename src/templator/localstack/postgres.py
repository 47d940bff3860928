"""A private PostgreSQL 15+ under the project's var/ folder."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from templator.localstack.process import (
    LocalStackError,
    ProcessRecord,
    die_with_parent,
    drop_privileges_user,
    free_port,
    wait_until,
)

MIN_MAJOR = 15
USER = "templator"
DATABASE = "templator"
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "effective_cache_size": "1GB",
    "maintenance_work_mem": "64MB",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "16MB",
    "default_statistics_target": "100",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "fsync": "on",
    "logging_collector": "off",
}


def find_bindir() -> Path:
    """The newest PostgreSQL (≥ 15) server binaries on this machine."""
    candidates: list[tuple[int, Path]] = []
    for folder in Path("/usr/lib/postgresql").glob("*/bin"):
        if folder.parent.name.isdigit() and (folder / "postgres").exists():
            candidates.append((int(folder.parent.name), folder))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        version = subprocess.run(
            [pg_config, "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"(\d+)", version)
        if match and (bindir / "postgres").exists():
            candidates.append((int(match.group(1)), bindir))
    usable = sorted(c for c in candidates if c[0] >= MIN_MAJOR)
    if not usable:
        raise LocalStackError(
            "no PostgreSQL 15+ server binaries found: install them (Debian: "
            "`apt-get install postgresql-15 postgresql-contrib`, or run "
            "scripts/install-system-deps.sh), or set DATABASE_URL to use an existing server"
        )
    return usable[-1][1]


class LocalPostgres:
    """initdb on first start, then `postgres` in the foreground as our child."""

    def __init__(self, data_dir: Path, *, socket_dir: Path, port: int | None = None) -> None:
        self.root = data_dir
        self.data = data_dir / "data"
        self.socket_dir = socket_dir
        self.port = port or free_port()
        self.log = data_dir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.run_as = drop_privileges_user()
        self.bindir = find_bindir()

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the project database."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _chown(self, path: Path) -> None:
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        """PostgreSQL runs as `postgres` when we are root: it must be able to reach var/."""
        if not self.run_as:
            return
        entry = pwd.getpwnam(self.run_as)
        for folder in [self.root, *self.root.parents]:
            if not folder.exists():
                continue
            info = folder.stat()
            if info.st_uid == entry.pw_uid:
                continue
            bit = 0o010 if info.st_gid == entry.pw_gid else 0o001
            if not info.st_mode & bit:
                raise LocalStackError(
                    f"PostgreSQL refuses to run as root, so it runs as {self.run_as!r}, which "
                    f"cannot enter {folder}: make it traversable (chmod o+x {folder}) or "
                    "set VAR_DIR to a folder under a traversable path"
                )

    def _prepare_dirs(self) -> None:
        self._check_reachable()
        for folder in (self.root, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            self._chown(folder)
        os.chmod(self.socket_dir, 0o700)

    def initialised(self) -> bool:
        """True once initdb has run."""
        return (self.data / "PG_VERSION").exists()

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            user=self.run_as,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise LocalStackError(f"initdb failed: {result.stderr.strip()[-800:]}")

    def start(self, *, timeout: float = 60.0) -> ProcessRecord:
        """Start the server (initialising it on first use); return its process record."""
        self._prepare_dirs()
        fresh = not self.initialised()
        if fresh:
            self._initdb()
        args = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        args += ["-k", str(self.socket_dir)]
        for key, value in SETTINGS.items():
            args += ["-c", f"{key}={value}"]
        log = self.log.open("ab")
        try:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.run_as,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGINT),
            )
        finally:
            log.close()
        if self.run_as:
            self._chown(self.log)
        return ProcessRecord.of(self.process.pid)

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Block until the server accepts connections, then make sure the database exists."""
        assert self.process is not None
        admin = f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

        def ready() -> bool:
            try:
                with psycopg.connect(admin, connect_timeout=1, autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return True
            except psycopg.OperationalError:
                return False

        wait_until(ready, process=self.process, timeout=timeout, what="PostgreSQL", log=self.log)

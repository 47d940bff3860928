"""Where the test suite finds its PostgreSQL and Redis, and the guard that keeps it local.

PostgreSQL: the machine's server (`TEST_DATABASE_URL`), in databases the suite creates
and drops. Redis: a redis-server of each test process's own, unless `TEST_REDIS_URL`
names one; the suite flushes the databases it uses, so it never uses a shared server's
by default.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}

ADMIN_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL")  # None: each test process starts its own
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def assert_local(url: str) -> None:
    """Refuse to run destructive tests against anything but a server on this machine."""
    host = urlsplit(url).hostname or ""
    if host not in LOCAL_HOSTS and not host.startswith("/"):
        raise RuntimeError(
            f"refusing to run the test suite against {host!r}: tests create and drop "
            "databases and flush Redis, so only local servers are allowed"
        )


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/{database}").geturl()


def create_database(prefix: str = "templator_test") -> tuple[str, str]:
    """Create an empty database; return (name, sqlalchemy url)."""
    assert_local(ADMIN_DATABASE_URL)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(ADMIN_DATABASE_URL, name)
    return name, url.replace("postgresql://", "postgresql+psycopg://", 1)


def drop_database(name: str) -> None:
    """Drop a database made by `create_database`, closing its sessions first."""
    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass
class PrivateRedis:
    """A redis-server the tests own, so they may flush, stop, pause and restart it on the
    same port: nothing on disk, or, with `data_dir`, every write in an append-only file
    there (fsync always), so a restart brings back all it held, as a durable Redis does."""

    port: int
    process: subprocess.Popen[bytes] | None = None
    data_dir: str | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        if self.data_dir is None:
            argv += ["--appendonly", "no"]
        else:
            argv += ["--dir", self.data_dir, "--appendonly", "yes", "--appendfsync", "always"]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start on port {self.port}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()  # a paused server cannot act on SIGTERM
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections and answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause` (harmless otherwise)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

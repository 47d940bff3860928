"""A real PgBouncer (Debian's package) in transaction mode, in front of a test database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from templator.dev.localstack.process import drop_privileges_user, free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass(frozen=True)
class Bouncer:
    """Where the running PgBouncer listens, and its log."""

    port: int
    log: Path

    def url_for(self, database_url: str) -> str:
        """`database_url` with host and port replaced by the bouncer's."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        credentials = f"{netloc[0]}@" if len(netloc) == 2 else ""
        return parts._replace(netloc=f"{credentials}127.0.0.1:{self.port}").geturl()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def pgbouncer(database_url: str, *, pool_size: int = 2) -> Iterator[Bouncer]:
    """PgBouncer in `pool_mode = transaction` with `pool_size` server connections for the
    database of `database_url`: few enough that clients share server connections, which is
    what breaks session state and named prepared statements."""
    target = urlsplit(database_url)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="templator-pgbouncer-"))
    log = folder / "pgbouncer.log"
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={target.hostname} port={target.port or 5432} "
        f"user={target.username or 'postgres'}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 500\n"
        f"logfile = {log}\npidfile = {folder / 'pgbouncer.pid'}\n"
        "ignore_startup_parameters = extra_float_digits, options\n"
    )
    user = drop_privileges_user()  # PgBouncer refuses to run as root
    if user is not None:
        shutil.chown(folder, user)
        for path in (config,):
            shutil.chown(path, user)
    process = subprocess.Popen(
        [PGBOUNCER, str(config)],
        user=user,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace") if log.exists() else "(no log)"
                raise RuntimeError(f"pgbouncer did not start: {tail[-2000:]}")
            time.sleep(0.05)
        yield Bouncer(port, log)
    finally:
        with_group = os.getpgid(process.pid) if process.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)

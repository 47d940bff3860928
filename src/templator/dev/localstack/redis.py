"""A private Redis 7 under the project's var/ folder.

Private on disk too: its folder is 0700 and the server runs with umask 077, so the RDB
snapshot, the append-only files (cached templates, project names, token records) and the
log are 0600, readable by this account only; files an older stack left 0644 are
tightened at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from templator.dev.localstack.process import (
    LocalStackError,
    ProcessRecord,
    die_with_parent,
    free_port,
    stop,
    wait_until,
)

# A cache and a queue for one developer: LRU eviction at 512 MB is the right failure mode.
# `logfile ""` sends the log to stdout, which we append to redis.log together with stderr,
# so a config error printed before logging starts lands in the same file.
CONFIG = """\
# Written by `templator up`; edits are overwritten on the next start.
port {port}
bind 127.0.0.1
protected-mode yes
daemonize no
dir {dir}
logfile ""
appendonly yes
appendfsync everysec
maxmemory 512mb
maxmemory-policy allkeys-lru
save 900 1
save 300 10
save 60 10000
tcp-keepalive 300
timeout 0
tcp-backlog 511
loglevel notice
"""


def find_redis_server() -> str:
    """The redis-server binary on PATH, or a clear error saying what to install."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LocalStackError(
            "redis-server not found: install it (Debian: `apt-get install redis-server`, "
            "or run scripts/install-system-deps.sh), or set REDIS_URL to use an existing server"
        )
    return binary


def _quote(path: Path) -> str:
    """A path as a Redis config string (double-quoted, so spaces survive)."""
    return json.dumps(str(path))


def _answers_ping(port: int, password: str | None) -> bool:
    """True once Redis replies +PONG (not -LOADING while it replays the append-only file)."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
        if password is not None:
            conn.sendall(f"AUTH {password}\r\n".encode())
            if not conn.recv(64).startswith(b"+OK"):
                return False
        conn.sendall(b"PING\r\n")
        return conn.recv(64).startswith(b"+PONG")


def _private_child(then: Callable[[], None] | None) -> Callable[[], None]:
    """A preexec_fn giving the server umask 077 (its files 0600), then running `then`."""

    def preexec() -> None:
        os.umask(0o077)
        if then is not None:
            then()

    return preexec


class LocalRedis:
    """redis-server with a generated config file, in the foreground as our child."""

    def __init__(
        self, data_dir: Path, *, port: int | None = None, password: str | None = None
    ) -> None:
        self.dir = data_dir
        self.password = password
        self.port = port or free_port()
        self.log = data_dir / "redis.log"
        self.config = data_dir / "redis.conf"
        self.process: subprocess.Popen[bytes] | None = None
        self.record: ProcessRecord | None = None
        self.binary = find_redis_server()

    @property
    def url(self) -> str:
        """Redis URL of database 0 (with the password, when the server requires one)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _make_private(self) -> None:
        """The folder 0700, everything in it 0600 (folders 0700)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        for path in self.dir.rglob("*"):
            with contextlib.suppress(OSError):  # gone meanwhile
                os.chmod(path, 0o700 if path.is_dir() else 0o600)

    def start(self) -> ProcessRecord:
        """Write the config and spawn the server without waiting for it."""
        self._make_private()
        config = CONFIG.format(port=self.port, dir=_quote(self.dir))
        if self.password:
            config += f"requirepass {self.password}\n"
        # The config holds the password: readable by this account only.
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(config)
        os.chmod(self.config, 0o600)
        log_fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log_fd, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, str(self.config), "--daemonize", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,
                preexec_fn=_private_child(die_with_parent(signal.SIGTERM)),
            )
        self.record = ProcessRecord.of(self.process.pid)
        return self.record

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Block until the server answers PING."""
        assert self.process is not None, "start() first"
        wait_until(
            lambda: _answers_ping(self.port, self.password),
            process=self.process,
            timeout=timeout,
            what="Redis",
            log=self.log,
        )

    def stop(self, *, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM: it writes its RDB snapshot first); safe to call twice."""
        if self.record is not None:
            stop(self.record, sig=signal.SIGTERM, timeout=timeout)
        if self.process is not None:
            self.process.poll()

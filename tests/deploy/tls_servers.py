"""Private PostgreSQL and Redis as the compose file runs them: password authentication
(scram-sha-256, requirepass) and TLS only, with certificates from scripts/deploy-certs.sh."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from redis import Redis

from templator.config import PROJECT_ROOT
from templator.dev.localstack.postgres import find_bindir
from templator.dev.localstack.process import free_port

SUPERUSER = "admin"
SUPERUSER_PASSWORD = "super/secret@1"


def make_certs(folder: Path) -> Path:
    """Run the project's certificate script into `folder`."""
    subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "deploy-certs.sh"), str(folder)],
        check=True,
        capture_output=True,
    )
    return folder


@dataclass(frozen=True)
class TlsPostgres:
    """Where the server listens, and the superuser's libpq connection string."""

    port: int
    admin_conninfo: str


def _wait(check: object, what: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # not up yet: keep polling until the deadline
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")


@contextmanager
def tls_postgres(certs: Path) -> Iterator[TlsPostgres]:
    """initdb with scram-sha-256, TLS on, and only hostssl connections accepted."""
    root = Path(tempfile.mkdtemp(prefix="templator-tlspg-"))
    os.chmod(root, 0o755)
    run_as = "postgres" if os.geteuid() == 0 else None
    owner = pwd.getpwnam(run_as) if run_as else None
    data, log = root / "data", root / "postgres.log"
    pwfile = root / "pw"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    for name in ("postgres.crt", "postgres.key", "ca.crt"):
        shutil.copy(certs / name, root / name)
    os.chmod(root / "postgres.key", 0o600)
    if owner is not None:
        for path in (root, pwfile, root / "postgres.crt", root / "postgres.key", root / "ca.crt"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    bindir = find_bindir()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile)]
    subprocess.run(
        [*initdb, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"],
        check=True,
        capture_output=True,
        user=run_as,
        cwd=root,
    )
    (data / "pg_hba.conf").write_text(
        "local all all scram-sha-256\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        "hostnossl all all 0.0.0.0/0 reject\n"
    )
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(root),
        "ssl": "on",
        "ssl_cert_file": str(root / "postgres.crt"),
        "ssl_key_file": str(root / "postgres.key"),
        "password_encryption": "scram-sha-256",
        "shared_buffers": "16MB",
        "max_connections": "40",
    }
    args = [str(bindir / "postgres"), "-D", str(data), "-p", str(port)]
    for key, value in settings.items():
        args += ["-c", f"{key}={value}"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, user=run_as, cwd=root
        )
    admin = (
        f"host=127.0.0.1 port={port} dbname=postgres user={SUPERUSER} "
        f"password='{SUPERUSER_PASSWORD}' sslmode=verify-full sslrootcert={root / 'ca.crt'}"
    )
    try:
        _wait(lambda: psycopg.connect(admin, connect_timeout=1).close() is None, "PG", log)
        yield TlsPostgres(port, admin)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def tls_redis(certs: Path, *, password: str) -> Iterator[int]:
    """redis-server on a TLS port only, with `requirepass`; yields the port."""
    root = Path(tempfile.mkdtemp(prefix="templator-tlsredis-"))
    port = free_port()
    log = root / "redis.log"
    args = ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
    args += ["--tls-cert-file", str(certs / "redis.crt"), "--tls-key-file"]
    args += [str(certs / "redis.key"), "--tls-ca-cert-file", str(certs / "ca.crt")]
    args += ["--tls-auth-clients", "no", "--requirepass", password, "--save", ""]
    args += ["--appendonly", "no", "--dir", str(root)]
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def up() -> bool:
        client = Redis(
            host="localhost",
            port=port,
            password=password,
            ssl=True,
            ssl_ca_certs=str(certs / "ca.crt"),
            socket_timeout=1,
        )
        try:
            return bool(client.ping())
        finally:
            client.close()

    try:
        _wait(up, "redis-server", log)
        yield port
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(root, ignore_errors=True)

"""`templator up` brings the whole platform up on embedded servers and takes it all down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil

from templator.config import PROJECT_ROOT
from templator.dev.localstack.process import ProcessRecord, free_port, is_alive


def _start_up(var_dir: Path, port: int) -> subprocess.Popen[str]:
    """`templator up` on its own var folder and port (no store URL: the embedded stack)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL")
    }
    env["VAR_DIR"] = str(var_dir)
    templator = Path(sys.executable).parent / "templator"
    return subprocess.Popen(
        [str(templator), "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_ROOT,
    )


def _wait_ready(proc: subprocess.Popen[str], port: int) -> httpx.Response:
    deadline = time.monotonic() + 240  # initdb, migrations and seed on a shared machine
    ready = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.3)
    assert ready is not None and ready.status_code == 200, proc.poll()
    return ready


def test_up_serves_ready_api_with_demo_data_then_stops_everything_on_ctrl_c() -> None:
    var_dir = PROJECT_ROOT / "var" / f"test-up-{uuid.uuid4().hex[:8]}"
    port = free_port()
    proc = _start_up(var_dir, port)
    env = {**os.environ, "VAR_DIR": str(var_dir)}
    try:
        ready = _wait_ready(proc, port)
        components = ready.json()["components"]
        assert components["postgres"]["status"] == "up"
        state = json.loads((var_dir / "stack.json").read_text())
        servers = [ProcessRecord(r["pid"], r["create_time"]) for r in state["servers"].values()]
        assert len(servers) == 3 and all(is_alive(s) for s in servers)

        app_password = (var_dir / "secrets" / "postgres-app.password").read_text().strip()
        assert app_password not in json.dumps(state)  # secrets stay in their 0600 files
        users = subprocess.run(
            [
                "psql",
                state["urls"]["database_url"].replace("+psycopg", ""),
                "-Atc",
                "SELECT count(*) FROM users",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**env, "PGPASSWORD": app_password},
        )
        assert int(users.stdout) > 0

        # A server that dies is reaped, reported in one line and restarted on its port.
        redis = ProcessRecord(**state["servers"]["redis"])
        os.kill(redis.pid, signal.SIGKILL)
        restarted = _wait_for_new_pid(var_dir, "redis", redis.pid, timeout=60)
        assert is_alive(restarted) and not is_alive(redis)
        assert not psutil.pid_exists(redis.pid) or psutil.Process(redis.pid).status() != "zombie"
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json()["status"] in (
            "up",
            "degraded",  # the cache's client may not have reconnected yet
        )
        servers = [restarted if s.pid == redis.pid else s for s in servers]

        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert f"{var_dir / 'secrets'}/" in output  # where the secrets are is printed
        assert app_password not in output
        assert not any(is_alive(s) for s in servers)
        assert not (var_dir / "stack.json").exists()
        lines = output.splitlines()
        died = [line for line in lines if f"Redis (pid {redis.pid}) killed by SIGKILL" in line]
        assert len(died) == 1, output
        assert any(f"Redis restarted (pid {restarted.pid})" in line for line in lines), output
        assert sum("stopping Redis" in line for line in lines) == 1, output
        assert "Traceback" not in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(var_dir, ignore_errors=True)


def _wait_for_new_pid(var_dir: Path, name: str, old: int, *, timeout: float) -> ProcessRecord:
    """The server's record in stack.json once the supervisor has replaced `old`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            record = json.loads((var_dir / "stack.json").read_text())["servers"][name]
        except (OSError, ValueError, KeyError):
            record = None
        if record is not None and record["pid"] != old:
            return ProcessRecord(**record)
        time.sleep(0.2)
    raise AssertionError(f"{name} was not restarted within {timeout}s")


def test_sigterm_after_a_restart_stops_every_server_and_removes_stack_json() -> None:
    var_dir = PROJECT_ROOT / "var" / f"test-up-{uuid.uuid4().hex[:8]}"
    port = free_port()
    proc = _start_up(var_dir, port)
    servers: dict[str, ProcessRecord] = {}
    try:
        _wait_ready(proc, port)
        state = json.loads((var_dir / "stack.json").read_text())
        servers = {name: ProcessRecord(**r) for name, r in state["servers"].items()}
        killed = servers["seaweedfs"]
        os.kill(killed.pid, signal.SIGKILL)
        servers["seaweedfs"] = _wait_for_new_pid(var_dir, "seaweedfs", killed.pid, timeout=90)
        assert is_alive(servers["seaweedfs"])

        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
        left = [name for name, record in servers.items() if is_alive(record)]
        assert not left, output  # uvicorn's re-raised SIGTERM skipped the cleanup before
        assert not (var_dir / "stack.json").exists()
        assert "stopped" in output.splitlines()[-1]
        assert "Traceback" not in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for record in servers.values():
            if is_alive(record):
                os.kill(record.pid, signal.SIGKILL)
        shutil.rmtree(var_dir, ignore_errors=True)

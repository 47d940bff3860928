"""The embedded stack starts real servers, refuses a second owner, and leaves no orphans."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
from redis import Redis

from templator.config import PROJECT_ROOT, Settings
from templator.localstack import LocalStack, LocalStackError, discover_running_stack
from templator.localstack.process import ProcessRecord, is_alive


@pytest.fixture(scope="module")
def var_dir() -> Iterator[Path]:
    """One var folder for the module (initdb runs once), under the project's var/.

    pytest's own temporary folders are private to root, and PostgreSQL runs as `postgres`.
    """
    folder = PROJECT_ROOT / "var" / f"test-stack-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_an_unreachable_var_dir_is_refused_with_the_fix(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands PostgreSQL to the postgres account")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    settings = Settings(_env_file=None, var_dir=private / "var")  # type: ignore[call-arg]
    with pytest.raises(LocalStackError, match="chmod o\\+x"):
        LocalStack(settings).start()


@pytest.fixture
def stack_settings(var_dir: Path) -> Settings:
    return Settings(_env_file=None, var_dir=var_dir)  # type: ignore[call-arg]


@pytest.fixture
def running(stack_settings: Settings) -> Iterator[LocalStack]:
    stack = LocalStack(stack_settings)
    stack.start()
    yield stack
    stack.stop()


def _pg(url: str) -> psycopg.Connection:
    return psycopg.connect(url.replace("+psycopg", ""), autocommit=True)


def test_stack_serves_postgres_with_pg_stat_statements_redis_and_s3(running: LocalStack) -> None:
    urls = running.urls
    with _pg(urls.database_url) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        assert preload is not None and "pg_stat_statements" in preload[0]
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        assert conn.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone() == (True,)
    assert Redis.from_url(urls.redis_url).ping()
    s3 = boto3.client(
        "s3",
        endpoint_url=urls.s3_endpoint_url,
        aws_access_key_id="templator",
        aws_secret_access_key="templator-secret",
        region_name="us-east-1",
    )
    assert "Buckets" in s3.list_buckets()
    assert discover_running_stack(running.var_dir) == urls


def test_stop_leaves_no_server_running(stack_settings: Settings) -> None:
    stack = LocalStack(stack_settings)
    stack.start()
    records = dict(stack.records)
    stack.stop()
    assert records and not any(is_alive(r) for r in records.values())
    assert discover_running_stack(stack_settings.var_dir) is None


def test_a_second_stack_on_the_same_folder_is_refused(
    running: LocalStack, stack_settings: Settings
) -> None:
    with pytest.raises(LocalStackError, match="already running"):
        LocalStack(stack_settings).start()
    assert Redis.from_url(running.urls.redis_url).ping()


def test_data_survives_a_restart(stack_settings: Settings) -> None:
    with LocalStack(stack_settings) as stack, _pg(stack.urls.database_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (v int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    with LocalStack(stack_settings) as stack, _pg(stack.urls.database_url) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]
        conn.execute("DROP TABLE kept")


def test_servers_of_a_killed_owner_are_stopped_by_the_next_start(
    stack_settings: Settings, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from templator.config import Settings
        from templator.localstack import LocalStack
        stack = LocalStack(Settings(_env_file=None, var_dir=Path({str(stack_settings.var_dir)!r})))
        stack.start()
        print("up", flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "up"
        state = json.loads((stack_settings.var_dir / "stack.json").read_text())
        orphans = [ProcessRecord(r["pid"], r["create_time"]) for r in state["servers"].values()]
        # setsid'd servers do not get SIGKILL with their owner; the parent-death signal may
        # stop them, the sweep must.
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
    finally:
        if owner.poll() is None:
            owner.kill()
    with LocalStack(stack_settings) as stack:
        deadline = time.monotonic() + 10
        while any(is_alive(r) for r in orphans) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(is_alive(r) for r in orphans)
        assert Redis.from_url(stack.urls.redis_url).ping()


def test_stale_state_with_live_unrelated_pid_is_never_killed(stack_settings: Settings) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = {
            "owner": {"pid": 999_999, "create_time": 0.0},
            "servers": {"redis": {"pid": bystander.pid, "create_time": 1.0}},
            "urls": {"database_url": "x", "redis_url": "y", "s3_endpoint_url": "z"},
        }
        stack_settings.var_dir.mkdir(parents=True, exist_ok=True)
        (stack_settings.var_dir / "stack.json").write_text(json.dumps(state))
        with LocalStack(stack_settings):
            assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()

"""The embedded stack starts real servers, refuses a second owner, and leaves no orphans."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil
import psycopg
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from redis import Redis
from redis.exceptions import AuthenticationError as RedisAuthenticationError

from templator.config import PROJECT_ROOT, Settings
from templator.dev.localstack import LocalStack, LocalStackError, discover_running_stack
from templator.dev.localstack import postgres as local_postgres
from templator.dev.localstack import redis as local_redis
from templator.dev.localstack.postgres import LocalPostgres
from templator.dev.localstack.process import ProcessRecord, die_with_parent, is_alive
from templator.dev.localstack.seaweedfs import find_weed


@pytest.fixture(scope="module")
def var_dir() -> Iterator[Path]:
    """One var folder for the module (initdb runs once), under the project's var/.

    pytest's own temporary folders are private to root, and PostgreSQL runs as `postgres`.
    """
    folder = PROJECT_ROOT / "var" / f"test-stack-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    postgres = LocalPostgres(folder / "postgres", socket_dir=folder / "run")
    postgres.start()
    postgres.wait_ready()
    postgres.stop()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _private_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("only root hands PostgreSQL to the postgres account")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)  # like a `mktemp -d` parent or a 0700 home
    return private


def test_a_folder_postgres_cannot_enter_is_granted_search_for_it_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private = _private_folder(tmp_path)
    if local_postgres.setfacl_binary() is None:
        pytest.skip("setfacl (Debian's acl) is not installed")
    postgres = LocalPostgres(private / "var" / "postgres", socket_dir=private / "var" / "run")
    try:
        postgres.start()
        postgres.wait_ready()
    finally:
        postgres.stop()
    assert any("granted 'postgres' search access" in r.getMessage() for r in caplog.records)
    # One named entry for postgres; the owning group and others still get nothing (the
    # group bits of st_mode now show the ACL mask, so read the ACL itself).
    acl = subprocess.run(["getfacl", "-cp", str(private)], capture_output=True, text=True)
    entries = acl.stdout.splitlines()
    assert "user:postgres:--x" in entries
    assert "group::---" in entries and "other::---" in entries
    assert private.stat().st_mode & 0o007 == 0


def test_without_setfacl_an_unreachable_var_dir_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = _private_folder(tmp_path)
    monkeypatch.setattr(local_postgres, "setfacl_binary", lambda: None)
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


def _admin(stack: LocalStack) -> str:
    assert stack.urls.admin_database_url is not None
    return stack.urls.admin_database_url


def test_every_server_needs_its_generated_secret_kept_in_0600_files(running: LocalStack) -> None:
    secrets = running.var_dir / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    files = sorted(p.name for p in secrets.iterdir())
    assert files == [
        "cache-signing.key",
        "postgres-app.password",
        "postgres-owner.password",
        "redis.password",
        "s3-access.key",
        "s3-secret.key",
    ]
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    state = (running.var_dir / "stack.json").read_text()
    assert not any((secrets / name).read_text().strip() in state for name in files)

    assert running.postgres is not None and running.redis is not None
    port = running.postgres.port
    for user, password in (("templator_app", None), ("templator", None), ("templator", "wrong")):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(
                host="127.0.0.1", port=port, user=user, password=password, dbname="templator"
            )
    with pytest.raises(RedisAuthenticationError):
        Redis(host="127.0.0.1", port=running.redis.port).ping()
    assert Redis.from_url(running.urls.redis_url).ping()


def _s3(endpoint: str, access_key: str, secret_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _listening_ports(pid: int) -> list[int]:
    return sorted(
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    )


def _anonymous(method: str, url: str) -> int | str:
    """The status of an unauthenticated request, or why there was no HTTP answer."""
    try:
        return httpx.request(method, url, content=b"x" if method == "PUT" else None, timeout=5)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def test_the_object_store_needs_the_stacks_own_keys_on_every_port(running: LocalStack) -> None:
    urls = running.urls
    assert urls.s3_keys is not None
    assert "templator" not in urls.s3_keys and "templator-secret" not in urls.s3_keys
    with pytest.raises(ClientError):
        _s3(urls.s3_endpoint_url, "templator", "templator-secret").list_buckets()
    s3 = _s3(urls.s3_endpoint_url, *urls.s3_keys)
    s3.create_bucket(Bucket="private-probe")
    s3.put_object(Bucket="private-probe", Key="designs/secret.txt", Body=b"secret design")
    assert running.seaweedfs is not None and running.seaweedfs.pid is not None
    ports = _listening_ports(running.seaweedfs.pid)
    assert len(ports) >= 5  # master, volume, filer, S3, admin and their gRPC twins
    answers = {}
    for port in ports:
        base = f"http://127.0.0.1:{port}"
        for method, path in (
            ("GET", "/buckets/private-probe/designs/secret.txt"),
            ("GET", "/private-probe/designs/secret.txt"),
            ("PUT", "/buckets/private-probe/designs/planted.txt"),
            ("PUT", "/private-probe/designs/planted.txt"),
            ("PUT", "/1,01637037d6"),  # a volume server's file id
            ("GET", "/dir/assign"),  # a master's file id for a write
        ):
            response = _anonymous(method, base + path)
            answers[(port, method, path)] = (
                response if isinstance(response, str) else response.status_code
            )
            if not isinstance(response, str):
                assert b"secret design" not in response.content
    # Refused (401/403/404 or no HTTP at all on a gRPC port): never 2xx or 3xx.
    assert not [k for k, v in answers.items() if isinstance(v, int) and v < 400], answers
    keys = s3.list_objects_v2(Bucket="private-probe")["Contents"]
    assert [o["Key"] for o in keys] == ["designs/secret.txt"]
    s3.delete_object(Bucket="private-probe", Key="designs/secret.txt")
    s3.delete_bucket(Bucket="private-probe")
    folder = running.var_dir / "seaweedfs"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "security.toml").stat().st_mode) == 0o600


def test_the_object_stores_grpc_ports_refuse_a_client_without_its_certificate(
    running: LocalStack, tmp_path: Path
) -> None:
    urls = running.urls
    assert urls.s3_keys is not None and running.seaweedfs is not None
    s3 = _s3(urls.s3_endpoint_url, *urls.s3_keys)
    s3.create_bucket(Bucket="grpc-probe")
    try:
        # SeaweedFS's own shell, as another account would run it (no security.toml here).
        shell = [find_weed(), "shell", f"-master=127.0.0.1:{running.seaweedfs.ports['master']}"]
        try:
            listed = subprocess.run(
                shell,
                input="fs.ls /buckets\n",
                capture_output=True,
                text=True,
                timeout=20,
                cwd=tmp_path,
                env={k: v for k, v in os.environ.items() if not k.startswith("WEED_")}
                | {"HOME": str(tmp_path)},
            ).stdout
        except subprocess.TimeoutExpired as exc:  # it keeps retrying the handshake
            listed = exc.stdout.decode() if isinstance(exc.stdout, bytes) else ""
        assert "grpc-probe" not in listed
    finally:
        s3.delete_bucket(Bucket="grpc-probe")


def test_redis_data_files_are_0600_in_a_0700_folder(running: LocalStack) -> None:
    client = Redis.from_url(running.urls.redis_url)
    client.set("private-probe", "token record")
    client.save()  # the RDB snapshot, beside the append-only files
    folder = running.var_dir / "redis"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".rdb" for p in files) and any(".aof" in p.name for p in files)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
    for sub in (p for p in folder.rglob("*") if p.is_dir()):
        assert stat.S_IMODE(sub.stat().st_mode) == 0o700, sub
    client.delete("private-probe")


def test_the_application_role_reads_and_writes_rows_but_is_no_superuser(
    running: LocalStack,
) -> None:
    with _pg(_admin(running)) as owner:
        owner.execute("CREATE TABLE IF NOT EXISTS app_probe (v int)")
    try:
        with _pg(running.urls.database_url) as app:
            assert app.execute(
                "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone() == ("templator_app", False)
            app.execute("INSERT INTO app_probe VALUES (1)")
            assert app.execute("SELECT count(*) FROM app_probe").fetchone() == (1,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("CREATE TABLE app_made (v int)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("DROP TABLE app_probe")
    finally:
        with _pg(_admin(running)) as owner:
            owner.execute("DROP TABLE app_probe")


def test_a_trust_cluster_of_an_older_stack_is_converted_to_passwords(tmp_path: Path) -> None:
    folder = PROJECT_ROOT / "var" / f"test-trust-{uuid.uuid4().hex[:8]}"
    try:
        old = LocalPostgres(folder / "postgres", socket_dir=folder / "run")
        old._prepare_dirs()
        initdb = [str(old.bindir / "initdb"), "-D", str(old.data), "-U", "templator"]
        subprocess.run(
            [*initdb, "--auth=trust", "--encoding=UTF8", "--locale=C"],
            user=old.run_as,
            cwd=old.root,
            check=True,
            capture_output=True,
        )
        with LocalStack(Settings(_env_file=None, var_dir=folder)) as stack:  # type: ignore[call-arg]
            assert stack.postgres is not None
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(
                    host="127.0.0.1", port=stack.postgres.port, user="templator", dbname="templator"
                )
            with _pg(stack.urls.database_url) as app:
                assert app.execute("SELECT current_user").fetchone() == ("templator_app",)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_stack_serves_postgres_with_pg_stat_statements_redis_and_s3(running: LocalStack) -> None:
    urls = running.urls
    assert urls.admin_database_url is not None
    with _pg(urls.admin_database_url) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        assert preload is not None and "pg_stat_statements" in preload[0]
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        assert conn.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone() == (True,)
    assert Redis.from_url(urls.redis_url).ping()
    assert urls.s3_keys is not None
    s3 = _s3(urls.s3_endpoint_url, *urls.s3_keys)
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
    with pytest.raises(LocalStackError, match=rf"already running \(pid {os.getpid()}\)"):
        LocalStack(stack_settings).start()
    assert discover_running_stack(stack_settings.var_dir) == running.urls
    assert Redis.from_url(running.urls.redis_url).ping()


def test_data_survives_a_restart(stack_settings: Settings) -> None:
    with LocalStack(stack_settings) as stack, _pg(_admin(stack)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (v int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    with LocalStack(stack_settings) as stack, _pg(stack.urls.database_url) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]  # the app role reads
    with LocalStack(stack_settings) as stack, _pg(_admin(stack)) as conn:
        conn.execute("DROP TABLE kept")


def test_servers_of_a_killed_owner_are_stopped_by_the_next_start(
    stack_settings: Settings, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        import templator.dev.localstack.process as process
        process.die_with_parent = lambda sig: None  # leave the sweep alone in charge
        from templator.config import Settings
        from templator.dev.localstack import LocalStack
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
        # setsid'd servers do not get SIGKILL with their owner, and this owner asked for no
        # parent-death signal: the orphans run until the next start sweeps them.
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        assert len(orphans) == 3 and all(is_alive(r) for r in orphans)
        assert discover_running_stack(stack_settings.var_dir) is None
    finally:
        if owner.poll() is None:
            owner.kill()
    with LocalStack(stack_settings) as stack:
        assert not any(is_alive(r) for r in orphans)
        assert Redis.from_url(stack.urls.redis_url).ping()


def test_stale_state_naming_a_recycled_pid_never_kills_it(stack_settings: Settings) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = {
            "owner": {"pid": 999_999, "create_time": 0.0},
            "servers": {"redis": {"pid": bystander.pid, "create_time": 1.0}},
            "urls": {"database_url": "x", "redis_url": "y", "s3_endpoint_url": "z"},
        }
        (stack_settings.var_dir / "stack.json").write_text(json.dumps(state))
        lock = stack_settings.var_dir / "postgres" / "data" / "postmaster.pid"
        lock.write_text(f"{bystander.pid}\n{stack_settings.var_dir}\n")
        with LocalStack(stack_settings):
            assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_server_failing_to_start_stops_the_others_and_names_itself(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_redis, "CONFIG", local_redis.CONFIG + "bogus-directive yes\n")
    stack = LocalStack(stack_settings)
    with pytest.raises(LocalStackError, match=r"(?s)Redis exited.*bogus-directive") as failure:
        stack.start()
    assert "redis.log" in str(failure.value)
    assert stack.postgres is not None and stack.postgres.record is not None
    assert not is_alive(stack.postgres.record)
    assert not (stack_settings.var_dir / "stack.json").exists()
    monkeypatch.undo()
    with LocalStack(stack_settings) as again:  # the lock was released
        assert Redis.from_url(again.urls.redis_url).ping()


def test_a_stack_whose_owner_is_dead_is_not_discovered(tmp_path: Path) -> None:
    state = {
        "owner": {"pid": 999_999, "create_time": 0.0},
        "servers": {},
        "urls": {"database_url": "x", "redis_url": "y", "s3_endpoint_url": "z"},
    }
    (tmp_path / "stack.json").write_text(json.dumps(state))
    assert discover_running_stack(tmp_path) is None
    assert discover_running_stack(tmp_path / "nowhere") is None


def test_parent_death_signal_is_asked_for_only_from_the_main_thread() -> None:
    assert die_with_parent(signal.SIGTERM) is not None
    from_worker: list[object] = []
    worker = threading.Thread(target=lambda: from_worker.append(die_with_parent(signal.SIGTERM)))
    worker.start()
    worker.join()
    assert from_worker == [None]


def test_an_unrecorded_postgres_on_the_data_folder_is_stopped_before_start(
    stack_settings: Settings,
) -> None:
    orphan = LocalPostgres(
        stack_settings.var_dir / "postgres", socket_dir=stack_settings.var_dir / "run"
    )
    record = orphan.start()
    orphan.wait_ready()
    with LocalStack(stack_settings) as stack:
        assert not is_alive(record)
        with _pg(stack.urls.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_no_password_of_the_stack_reaches_pg_stat_statements_or_the_log(
    running: LocalStack,
) -> None:
    """The roles' passwords are set from a SCRAM verifier made client-side, with utility
    statements untracked: pg_stat_statements keeps a utility statement's text as sent,
    and the dashboard and `templator db top` show those texts."""
    secrets = running.var_dir / "secrets"
    passwords = [
        (secrets / name).read_text().strip()
        for name in ("postgres-app.password", "postgres-owner.password")
    ]
    with _pg(_admin(running)) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        texts = [row[0] for row in conn.execute("SELECT query FROM pg_stat_statements")]
    assert texts  # the view answers, and holds the stack's own statements
    assert not [t for t in texts if any(p in t for p in passwords)]
    assert running.postgres is not None
    logs = "".join(
        path.read_text(errors="replace") for path in running.postgres.data.glob("**/*.log")
    )
    assert not any(p in logs for p in passwords)


def test_a_port_taken_between_choosing_and_binding_it_is_replaced(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's and Redis's ports are chosen before they start (initdb takes seconds);
    another program may take one meanwhile. CI saw PostgreSQL exit with "could not bind …
    Address already in use" and the whole drill package error out. The stack starts that
    server again on another port."""
    import socket

    held = [socket.socket(), socket.socket()]
    for sock in held:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
    taken = [sock.getsockname()[1] for sock in held]
    # The first port each server is given is one this test holds, as a racing program would.
    real = local_postgres.free_port
    postgres_ports, redis_ports = iter([taken[0]]), iter([taken[1]])
    monkeypatch.setattr(local_postgres, "free_port", lambda: next(postgres_ports, None) or real())
    monkeypatch.setattr(local_redis, "free_port", lambda: next(redis_ports, None) or real())
    events: list[tuple[str, str]] = []
    stack = LocalStack(
        stack_settings, on_event=lambda name, message: events.append((name, message))
    )
    try:
        stack.start()
        assert stack.postgres is not None and stack.redis is not None
        assert stack.postgres.port not in taken and stack.redis.port not in taken
        with _pg(_admin(stack)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        said = [message for _, message in events]
        assert any("PostgreSQL's port was taken meanwhile" in m for m in said), said
        assert any("Redis's port was taken meanwhile" in m for m in said), said
    finally:
        stack.stop()
        for sock in held:
            sock.close()

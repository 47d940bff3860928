"""A private, supervised stack (PostgreSQL, Redis, SeaweedFS) that the drills may kill and
pause, and `templator serve` on it in a subprocess, as an operator runs it.

Never the machine's shared servers: everything here is started by these fixtures under
var/ on free ports and stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.config import PROJECT_ROOT, ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack import LocalStack
from templator.dev.localstack.process import free_port
from templator.dev.localstack.supervisor import Supervisor
from templator.kit.uow import unit_of_work
from templator.migrations import runner
from templator.models import UserRole
from templator.user.schemas import UserCreate
from templator.user.service import UserService

# Short bounds so a drill sees each outage answered within seconds: a statement may take
# 2 s on the server, the client waits at most 2 + 1 s for any answer.
TIMEOUTS = {
    "DB_CONNECT_TIMEOUT": "1",
    "DB_STATEMENT_TIMEOUT_MS": "2000",
    "DB_POOL_TIMEOUT": "3",
    "REDIS_SOCKET_TIMEOUT": "0.5",
    "REDIS_CONNECT_TIMEOUT": "0.5",
    "S3_CONNECT_TIMEOUT": "1",
    "S3_READ_TIMEOUT": "3",
}
# The longest a request may take while a store is down or hung: the client-side bound
# (statement + connect timeout), a pool checkout, and slack for a loaded 2-core machine.
OUTAGE_ANSWER_BOUND = 2 + 1 + 3 + 4


@dataclass
class SupervisedStack:
    """The stack, its supervisor and what the supervisor reported."""

    stack: LocalStack
    supervisor: Supervisor
    events: list[tuple[str, str]] = field(default_factory=list)

    def pid(self, name: str) -> int:
        record = self.stack.records[name]
        return record.pid

    def wait_restarted(self, name: str, restarts_before: int, timeout: float = 60) -> float:
        """Seconds until the supervisor has restarted `name` again."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            state = self.supervisor.states[name]
            if state.restarts > restarts_before and state.state == "up":
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"{name} not restarted within {timeout}s: {self.events}")


def postgres_processes(stack: LocalStack) -> list[psutil.Process]:
    """The postmaster and every backend (each in a process group of its own)."""
    assert stack.postgres is not None and stack.postgres.record is not None
    postmaster = psutil.Process(stack.postgres.record.pid)
    return [postmaster, *postmaster.children(recursive=True)]


def signal_all(processes: list[psutil.Process], sig: signal.Signals) -> None:
    for process in processes:
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            continue


@contextlib.contextmanager
def supervised_stack() -> Iterator[SupervisedStack]:
    """`templator up`'s stack and supervisor, with quick restarts, migrated; stopped and
    removed on exit."""
    var_dir = PROJECT_ROOT / "var" / f"test-resil-{uuid.uuid4().hex[:8]}"
    conf = Settings(_env_file=None, var_dir=var_dir)  # type: ignore[call-arg]
    events: list[tuple[str, str]] = []
    stack = LocalStack(conf, on_event=lambda name, message: events.append((name, message)))
    stack.start()
    # The first restart waits 1.5 s, long enough for a drill to watch the outage itself.
    supervisor = Supervisor(
        stack,
        on_event=lambda name, message: events.append((name, message)),
        interval=0.1,
        first_delay=1.5,
        max_delay=4,
    )
    result = SupervisedStack(stack, supervisor, events)
    try:
        runner.upgrade(stack.urls.admin_database_url or stack.urls.database_url)
        supervisor.start()
        yield result
    finally:
        supervisor.stop()
        stack.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def supervised() -> Iterator[SupervisedStack]:
    """The package's shared supervised stack: no test may stop it for good."""
    with supervised_stack() as stack:
        yield stack


@dataclass
class Api:
    """`templator serve` on the supervised stack."""

    url: str
    log: Path
    settings: Settings
    headers: dict[str, str]
    user_id: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="package")
def api(supervised: SupervisedStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The API in a subprocess, with the drills' short timeouts, and an ADMIN's token."""
    urls = supervised.stack.urls
    assert urls.s3_keys is not None
    access_key, secret_key = urls.s3_keys
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_", "S3_"))},
        "DATABASE_URL": urls.database_url,
        "REDIS_URL": urls.redis_url,
        "S3_ENDPOINT_URL": urls.s3_endpoint_url,
        "S3_ACCESS_KEY": access_key,  # the stack's own key pair
        "S3_SECRET_KEY": secret_key,
        "CACHE_NAMESPACE": "resil",
        "VAR_DIR": str(supervised.stack.var_dir),
        # Every scrape asks the stores (no cached figures): a drill reads the outage off
        # /metrics while it lasts, as Prometheus would, to check the alert that fires.
        "METRICS_CACHE_SECONDS": "0",
        "METRICS_OBJECT_STORE_SECONDS": "0",
        **TIMEOUTS,
    }
    conf = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=urls.database_url,
        redis_url=urls.redis_url,
        s3_endpoint_url=urls.s3_endpoint_url,
        s3_access_key=access_key,
        s3_secret_key=secret_key,
        cache_namespace="resil",
        **{key.lower(): value for key, value in TIMEOUTS.items()},  # type: ignore[arg-type]
    )
    user_id, token = asyncio.run(_admin_token(conf))
    log = tmp_path_factory.mktemp("api") / "api.log"
    templator = str(Path(sys.executable).parent / "templator")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [templator, "serve", "--port", str(port), "--no-access-log"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core machine
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"the API did not start: {log.read_text()[-2000:]}")
        yield Api(url, log, conf, {"Authorization": f"Bearer {token}"}, user_id)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _admin_token(conf: Settings) -> tuple[str, str]:
    assert conf.database_url and conf.redis_url
    conns = Connections(
        conf, urls=StoreUrls(conf.database_url, conf.redis_url, None), role=ProcessRole.TEST
    )
    try:
        async with unit_of_work(conns.sessionmaker, conns.cache) as session:
            email = f"drill-{uuid.uuid4().hex[:8]}@example.com"
            user = await UserService(session, conns.cache).create(
                UserCreate(email=email, role=UserRole.ADMIN), origin=CLI
            )
            token = await TokenService(session, conns.cache).create(
                user.id, TokenCreate(name="drill"), origin=CLI
            )
        return user.id, token.token
    finally:
        await conns.close()


@pytest.fixture
async def http(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API whose every request is bounded in time."""
    async with httpx.AsyncClient(base_url=api.url, timeout=30, headers=api.headers) as client:
        yield client


@dataclass
class Outcome:
    """One request of a load."""

    started: float
    seconds: float
    status: int | None  # None: no response at all (connection error, client timeout)
    code: str | None = None
    retry_after: str | None = None
    body: dict[str, object] | None = None


async def run_load(
    client: httpx.AsyncClient,
    request: Callable[[httpx.AsyncClient, int], object],
    *,
    workers: int,
    until: asyncio.Event,
    max_requests: int,
) -> list[Outcome]:
    """`workers` loops sending `request(client, n)` until `until` is set or
    `max_requests` were sent; every outcome is recorded, none raises."""
    outcomes: list[Outcome] = []
    counter = iter(range(max_requests))

    async def worker() -> None:
        for n in counter:
            if until.is_set():
                return
            started = time.monotonic()
            try:
                response = await request(client, n)  # type: ignore[misc]
            except httpx.HTTPError:
                outcomes.append(Outcome(started, time.monotonic() - started, None))
                continue
            assert isinstance(response, httpx.Response)
            body = None
            if response.headers.get("content-type", "").endswith("json"):
                body = response.json()
            code = body.get("code") if isinstance(body, dict) else None
            outcomes.append(
                Outcome(
                    started,
                    time.monotonic() - started,
                    response.status_code,
                    str(code) if code else None,
                    response.headers.get("retry-after"),
                    body if isinstance(body, dict) else None,
                )
            )
            await asyncio.sleep(0.01)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return outcomes


def ready_state(api: Api) -> tuple[int, dict[str, object]]:
    """GET /health/ready: (status, body)."""
    response = httpx.get(f"{api.url}/health/ready", timeout=10)
    return response.status_code, response.json()


def scrape(api: Api) -> str:
    """The text of one scrape of the API's /metrics."""
    return httpx.get(f"{api.url}/metrics", timeout=10).text


def metric(api: Api, name: str, **labels: str) -> float:
    """One sample of the API's /metrics (0 when absent)."""
    text = scrape(api)
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0

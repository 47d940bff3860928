"""`templator serve --workers 2`: every scrape sees both workers' metrics, whichever answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from templator.config import PROJECT_ROOT, Settings
from templator.dev.localstack.process import free_port
from tests.monitoring.conftest import parse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_workers(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API with two uvicorn workers on the test stores."""
    port = free_port()
    var_dir = tmp_path_factory.mktemp("serve-var")
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "CACHE_NAMESPACE": "multiproc",
        "VAR_DIR": str(var_dir),
        "DB_POOL_SIZE": "3",
        "DB_MAX_OVERFLOW": "2",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    templator = str(Path(sys.executable).parent / "templator")
    server = subprocess.Popen(
        [templator, "serve", "--port", str(port), "--workers", "2", "--no-access-log"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # two workers importing on a loaded machine
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    assert not (var_dir / "metrics").exists() or not any((var_dir / "metrics").iterdir())


def test_every_scrape_counts_the_requests_of_both_workers(two_workers: str) -> None:
    # No keep-alive: each request is a new connection, which either worker may accept.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=two_workers, limits=no_reuse) as http:
        before = parse(http.get("/metrics").text).total(
            "templator_http_requests_total", route="/health"
        )
        for _ in range(40):
            assert http.get("/health").status_code == 200
        time.sleep(1.5)  # both workers' pool samplers have written at least once
        scrapes = [parse(http.get("/metrics").text) for _ in range(10)]
    counts = {s.total("templator_http_requests_total", route="/health") - before for s in scrapes}
    # one worker alone would show about half; every scrape shows all 40
    assert counts == {40}
    sizes = {s.value("templator_db_pool_size", pool="sqlalchemy") for s in scrapes}
    assert sizes == {2 * (3 + 2)}  # both live workers' pools, summed
    assert all(s.value("pg_up") == 1 for s in scrapes)

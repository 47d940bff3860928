"""The operator dashboard in headless Chromium, on a served app against real stores."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from templator.app import create_app
from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.config import ProcessRole, Settings
from templator.connections import Connections, StoreUrls
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.kit.ids import new_id
from templator.kit.uow import unit_of_work
from templator.models import UserRole
from templator.storage.service import ObjectStore
from templator.user.schemas import UserCreate
from templator.user.service import UserService
from tests.plugins.s3 import s3_settings
from tests.support.factories import hubspot_config
from tests.support.local_postgres import statements_postgres
from tests.support.screenshots import screenshot_path

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
HAS_CHROMIUM = CHROMIUM.exists()
SCREENSHOT = screenshot_path("dashboard.png")


@dataclass
class Served:
    url: str
    admin: str
    user: str


async def _tokens(conf: Settings) -> tuple[str, str]:
    assert conf.database_url and conf.redis_url
    urls = StoreUrls(conf.database_url, conf.redis_url, None)
    async with Connections(conf, urls=urls, role=ProcessRole.TEST) as conns:
        tokens = []
        for role in (UserRole.ADMIN, UserRole.USER):
            async with unit_of_work(conns.sessionmaker, conns.cache) as session:
                user = await UserService(session, conns.cache).create(
                    UserCreate(email=f"{new_id()}@example.com", role=role), origin=CLI
                )
                made = await TokenService(session, conns.cache).create(
                    user.id, TokenCreate(name="dashboard"), origin=CLI
                )
            tokens.append(made.token)
    return tokens[0], tokens[1]


def _traffic(url: str, token: str) -> None:
    """Real requests: a project, templates, reads (route and fast path), a 404, a session."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        project = http.post("/api/v1/projects", json={"name": "Site"}).json()
        body = {"project_id": project["id"], "name": "Hero", "html_content": "<p></p>",
                "hubspot_config": hubspot_config()}  # fmt: skip
        ids = [http.post("/api/v1/templates", json=body).json()["id"] for _ in range(3)]
        for template_id in ids * 5:
            assert http.get(f"/api/v1/templates/{template_id}").status_code == 200
        assert http.get("/api/v1/templates/" + "0" * 26).status_code in (404, 422)
        for _ in range(2):
            made = http.post("/api/v1/sessions", json={"project_id": project["id"]})
            assert made.status_code == 201, made.text
        failed = http.post(f"/api/v1/sessions/{made.json()['id']}/fail",
                           json={"error": {"message": "the model gave up"}})  # fmt: skip
        assert failed.status_code == 200, failed.text


@pytest.fixture(scope="module")
def served(settings: Settings, s3_server: SeaweedFS) -> Iterator[Served]:
    """uvicorn in a thread serving the app on a PostgreSQL with pg_stat_statements, the
    test Redis and a bucket of its own, with a history point every half second."""
    with statements_postgres() as database_url:
        conf = s3_settings(
            s3_server,
            database_url=database_url,
            redis_url=settings.redis_url,
            cache_namespace="dashboard",
            var_dir=settings.var_dir,
            metrics_history_seconds=0.5,
            metrics_cache_seconds=0,
        )
        with ThreadPoolExecutor(1) as pool:  # the tests' event loop runs in this thread
            admin, user = pool.submit(asyncio.run, _tokens(conf)).result()
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(conf), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.started, "uvicorn did not start"
        url = f"http://127.0.0.1:{port}"
        store = ObjectStore.from_settings(conf, endpoint_url=s3_server.endpoint_url)
        try:
            _traffic(url, admin)
            for index in range(3):  # the bucket's figures: real objects under two prefixes
                store.client.put_object(
                    Bucket=store.bucket, Key=f"designs/s{index}/d.png", Body=b"d" * 2048
                )
            store.client.put_object(Bucket=store.bucket, Key="modules/s0/m.zip", Body=b"z" * 512)
            yield Served(url, admin, user)
        finally:
            server.should_exit = True
            thread.join(30)
            store.delete_many([o["key"] for o in store.iter_objects()])
            store.client.delete_bucket(Bucket=store.bucket)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """Headless Debian Chromium driven by Playwright."""
    if not HAS_CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


async def _open(browser: Any, served: Served, token: str) -> tuple[Any, list[str]]:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    await page.goto(f"{served.url}/dashboard")
    await page.fill("#token", token)
    await page.click("#login button[type=submit]")
    return page, problems


async def test_the_dashboard_shows_every_section_with_real_figures(
    browser: Any, served: Served
) -> None:
    page, problems = await _open(browser, served, served.admin)
    await page.wait_for_selector("body[data-loaded='1']", timeout=60_000)
    # a few history points, so the charts have lines
    await page.wait_for_function(
        "Number(document.querySelector('#throughput').dataset.points) >= 4", timeout=60_000
    )
    for store in ("postgres", "redis", "object_store", "filesystem"):
        assert await page.get_attribute(f".card[data-store={store}]", "data-up") == "1", store
    pg = await page.inner_text(".card[data-store=postgres]")
    assert "connections" in pg and "buffer-cache hit ratio" in pg and "%" in pg
    assert "memory" in await page.inner_text(".card[data-store=redis]")
    assert "designs/" in await page.inner_text(".card[data-store=object_store]")
    pools = await page.inner_text("#pools table")
    assert "sqlalchemy" in pools and "read" in pools
    assert await page.locator("#throughput canvas").count() >= 1
    assert await page.locator("#latency canvas").count() >= 1
    queries = page.locator("#queries td.query")
    assert await queries.count() >= 3
    assert "templates" in " ".join(await queries.all_inner_texts())
    tables = await page.inner_text("#tables table")
    assert "templates" in tables and "ai_sessions" in tables
    domain = await page.inner_text("#domain")
    assert "by status" in domain and "FAILED" in domain
    # The backup collector reports the (empty) repository: no set yet, but figures.
    # The work queue: the traffic left one ready session (its tenant: the admin).
    ready = page.locator("#queue tr[data-tenant] td[data-state=ready]")
    assert await ready.count() >= 1
    assert "ready now" in await page.inner_text("#queue")
    backups = await page.inner_text("#backups")
    assert "Backups" in backups and len(backups.strip()) > len("Backups")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    await page.close()
    assert problems == []


async def test_a_token_without_the_admin_role_is_turned_back_to_the_login(
    browser: Any, served: Served
) -> None:
    page, problems = await _open(browser, served, served.user)
    await page.wait_for_selector("#login-error:not(:empty)", timeout=60_000)
    assert "ADMIN" in await page.inner_text("#login-error")
    assert await page.is_hidden("#board")
    await page.close()
    # the 403 of the summary is the only error the browser reports
    assert all("403" in problem for problem in problems)


def test_the_summary_needs_an_admin_token(served: Served) -> None:
    with httpx.Client(base_url=served.url) as http:
        assert http.get("/dashboard/api/summary").status_code == 401
        user = {"Authorization": f"Bearer {served.user}"}
        assert http.get("/dashboard/api/summary", headers=user).status_code == 403
        admin = {"Authorization": f"Bearer {served.admin}"}
        summary = http.get("/dashboard/api/summary", headers=admin).json()
    assert summary["stores"]["postgres"]["up"] is True
    assert summary["top_queries"]["error"] is None
    assert summary["backup"]["metrics"].get("templator_backup_repository_up") == 1.0

"""`templator pgadmin` in headless Chromium: the page loads without a login or a master
password, our server is registered, and its tables are listed; Ctrl-C stops it.

The pgAdmin install (about a minute, ~620 MB) is cached under TEMPLATOR_TEST_PGADMIN_VENV
(default ~/.cache/templator/pgadmin/venv), so repeated runs start in seconds.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from templator.dev.localstack.process import free_port
from tests.support.screenshots import screenshot_path

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = screenshot_path("pgadmin.png")
VENV = Path(
    os.environ.get(
        "TEMPLATOR_TEST_PGADMIN_VENV", Path.home() / ".cache" / "templator" / "pgadmin" / "venv"
    )
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium"),
]


@pytest.fixture
def pgadmin(database_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`templator pgadmin` on a free port against the test database; yields (url, process)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        # pgAdmin's own database is made once there too; each run re-registers the server.
        "VAR_DIR": str(VENV.parent / "test-var"),
        "PGADMIN_VENV": str(VENV),
        "COLUMNS": "200",
    }
    templator = Path(sys.executable).parent / "templator"
    process = subprocess.Popen(
        [str(templator), "pgadmin", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 600  # a first run installs pgAdmin
    line = ""
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            if "pgAdmin 4 at" in line:
                break
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if match is None:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"templator pgadmin did not start: {line}{err[-2000:]}")
    try:
        yield match[0], process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_pgadmin_lists_the_templator_server_and_its_tables(
    pgadmin: tuple[str, subprocess.Popen[str]], database_url: str
) -> None:
    from playwright.async_api import async_playwright

    url, process = pgadmin
    assert url.startswith("http://127.0.0.1:")
    database = make_url(database_url).database
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            # pgAdmin renders only the rows in view: tall enough for every table of ours.
            page = await browser.new_page(viewport={"width": 1400, "height": 1600})
            await page.goto(url, timeout=120_000)
            tree = page.locator(".file-entry")

            async def expand(name: str, depth: int) -> None:
                entry = tree.filter(has=page.locator(f'.file-name:text-is("{name}")')).and_(
                    page.locator(f'[data-depth="{depth}"]')
                )
                await entry.first.wait_for(timeout=120_000)
                toggle = entry.first.locator(".directory-toggle")
                for _ in range(5):  # a click while the node still loads is lost: again
                    if "open" in (await toggle.get_attribute("class") or ""):
                        return
                    await toggle.click()
                    await page.wait_for_timeout(3000)
                raise AssertionError(f"{name} did not expand")

            # Server group, server, Databases, ours, Schemas, public, Tables.
            for depth, name in enumerate(
                ["Templator", "Templator", "Databases", database, "Schemas", "public"], start=1
            ):
                await expand(str(name), depth)
            await expand("Tables", 7)
            for table in ("users", "projects", "ai_sessions", "templates", "processing_logs"):
                await page.locator(
                    f'.file-entry[data-depth="8"] .file-name:text-is("{table}")'
                ).wait_for(timeout=60_000)
            await page.locator('.file-name:text-is("projects")').click()
            await page.wait_for_timeout(1000)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT))
        finally:
            await browser.close()
    # Ctrl-C stops pgAdmin with the command.
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"{url}/misc/ping", timeout=2)

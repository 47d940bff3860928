"""`templator demo` tells the whole story through the live HTTP API: the web app's calls,
then `templator worker` processes working the sessions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from templator.dev.demo.flow import run_story
from tests.api.conftest import LiveApi

TEMPLATOR = str(Path(sys.executable).parent / "templator")


def _worker_token(live_api: LiveApi) -> str:
    email = f"demo-worker-{time.time_ns()}@example.com"
    run = {"env": live_api.env, "capture_output": True, "text": True, "check": True}
    subprocess.run([TEMPLATOR, "user", "create", "--email", email, "--role", "ADMIN"], **run)  # type: ignore[call-overload]
    created = subprocess.run(  # type: ignore[call-overload]
        [TEMPLATOR, "token", "create", "--user", email, "--scope", "worker", "--json"], **run
    )
    token: str = json.loads(created.stdout)["token"]
    return token


def test_the_demo_runs_sessions_through_worker_processes(live_api: LiveApi) -> None:
    token = live_api.headers["Authorization"].removeprefix("Bearer ")
    result = run_story(
        live_api.url,
        token,
        worker_token=_worker_token(live_api),
        sessions=3,
        workers=2,
        concurrency=2,
        env=live_api.env,
    )
    assert [r.status for r in result.sessions] == ["COMPLETED"] * 3, result.sessions
    assert all(r.template_id for r in result.sessions)
    assert [r.upload for r in result.sessions] == ["direct", "streamed", "streamed"]
    assert result.sessions[0].sections == ["header", "hero", "features", "pricing", "footer"]
    # Ready sessions other tests of this database left are work for the demo's workers too
    # (a worker credential serves every user): at least the demo's three.
    assert sum(int(str(w["completed"])) for w in result.workers) >= 3, result.workers
    assert result.download_url is not None
    archive = httpx.get(result.download_url)
    assert archive.status_code == 200 and archive.content[:2] == b"PK"


def test_without_workers_the_demo_leaves_the_sessions_ready(live_api: LiveApi) -> None:
    token = live_api.headers["Authorization"].removeprefix("Bearer ")
    result = run_story(live_api.url, token, worker_token=None, sessions=2, workers=0)
    assert [r.status for r in result.sessions] == ["PENDING", "PENDING"]
    assert [r.template_id for r in result.sessions] == [None, None]
    assert [s.name for s in result.steps].count("submit") == 2

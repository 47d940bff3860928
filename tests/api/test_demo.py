"""`templator demo` runs a whole session through the live HTTP API."""

from __future__ import annotations

import httpx

from templator.dev.demo.flow import run_demo
from tests.api.conftest import LiveApi


def test_demo_flow_ends_with_a_downloadable_module(live_api: LiveApi) -> None:
    token = live_api.headers["Authorization"].removeprefix("Bearer ")
    result = run_demo(live_api.url, token)
    assert [s.status for s in result.steps][-1] == 200
    assert any(s.note == "1.1.0, 1.0.1, 1.0.0" for s in result.steps)
    assert result.download_url is not None
    archive = httpx.get(result.download_url)
    assert archive.status_code == 200 and archive.content[:2] == b"PK"

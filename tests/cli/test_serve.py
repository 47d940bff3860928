"""`templator serve` hands uvicorn's supervisor a worker health-check timeout and the
trusted proxies: uvicorn's own 5 s killed workers that import the app slowly on a busy
host, over and over (the `--workers 2` crash loop)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from templator.cli.http_protocol import BoundedHttpToolsProtocol
from templator.cli.main import app
from templator.config import get_settings


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What `uvicorn.run` is asked to do, instead of serving."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append({"app": target, **kw}))
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


def test_serve_passes_the_settings_to_uvicorn(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_WORKER_HEALTHCHECK_TIMEOUT", "45")
    monkeypatch.setenv("API_FORWARDED_ALLOW_IPS", "10.0.0.5")
    monkeypatch.setenv("API_MAX_REQUESTS", "321")
    monkeypatch.setenv("API_BACKLOG", "77")
    monkeypatch.setenv("API_KEEP_ALIVE_TIMEOUT", "9")
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert call["workers"] == 2
    assert call["timeout_worker_healthcheck"] == 45
    assert call["forwarded_allow_ips"] == "10.0.0.5" and call["proxy_headers"] is True
    assert (call["limit_concurrency"], call["backlog"], call["timeout_keep_alive"]) == (321, 77, 9)
    # The protocol with the limits uvicorn lacks, pickled into each worker process.
    assert pickle.loads(pickle.dumps(call["http"])).func is BoundedHttpToolsProtocol


def test_serve_options_win_over_the_settings(uvicorn_calls: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(
        app,
        ["serve", "--worker-healthcheck-timeout", "90", "--forwarded-allow-ips", "192.0.2.1"],
    )
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert call["timeout_worker_healthcheck"] == 90
    assert call["forwarded_allow_ips"] == "192.0.2.1"


def test_installed_uvicorn_accepts_both_options() -> None:
    """The keyword names exist in this uvicorn's Config (0.3x+): a typo would only show
    when the API starts."""
    config = uvicorn.Config(
        "templator.app:create_app", timeout_worker_healthcheck=45, forwarded_allow_ips="x"
    )
    assert config.timeout_worker_healthcheck == 45 and config.forwarded_allow_ips == "x"

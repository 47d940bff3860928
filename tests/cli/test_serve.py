"""`templator serve` hands uvicorn's supervisor a worker health-check timeout (uvicorn's
own 5 s killed workers that import the app slowly on a busy host, over and over: the
`--workers 2` crash loop), and the trusted proxies to the app, never to uvicorn, whose
own default trusts every local process (issue #21)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from templator.cli.http_protocol import BoundedHttpToolsProtocol
from templator.cli.main import app
from templator.config import Settings, get_settings


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
    assert call["proxy_headers"] is False and "forwarded_allow_ips" not in call
    assert get_settings().api_forwarded_allow_ips == "10.0.0.5"
    assert (call["limit_concurrency"], call["backlog"], call["timeout_keep_alive"]) == (321, 77, 9)
    # The protocol with the limits uvicorn lacks, pickled into each worker process.
    assert pickle.loads(pickle.dumps(call["http"])).func is BoundedHttpToolsProtocol


def test_serve_options_win_over_the_settings(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_FORWARDED_ALLOW_IPS", "10.0.0.5")
    result = CliRunner().invoke(
        app,
        ["serve", "--worker-healthcheck-timeout", "90", "--forwarded-allow-ips", "192.0.2.1"],
    )
    assert result.exit_code == 0, result.output
    (call,) = uvicorn_calls
    assert call["timeout_worker_healthcheck"] == 90
    get_settings.cache_clear()
    assert get_settings().api_forwarded_allow_ips == "192.0.2.1"  # what the workers read


def test_no_proxy_is_trusted_unless_configured() -> None:
    assert Settings(_env_file=None).api_forwarded_allow_ips == ""  # type: ignore[call-arg]


def test_installed_uvicorn_accepts_the_option() -> None:
    """The keyword name exists in this uvicorn's Config (0.3x+): a typo would only show
    when the API starts."""
    config = uvicorn.Config("templator.app:create_app", timeout_worker_healthcheck=45)
    assert config.timeout_worker_healthcheck == 45

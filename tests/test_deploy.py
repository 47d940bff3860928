"""The docker-compose deployment keeps the plan's services, health checks and no secrets."""

from __future__ import annotations

import json
from typing import Any

import yaml

from templator.config import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def test_compose_has_every_store_the_api_and_pgadmin() -> None:
    assert set(_compose()["services"]) == {"postgres", "redis", "minio", "api", "pgadmin"}


def test_every_store_has_a_health_check_and_the_api_waits_for_them() -> None:
    services = _compose()["services"]
    for name in ("postgres", "redis", "minio"):
        assert "healthcheck" in services[name], name
        assert services["api"]["depends_on"][name]["condition"] == "service_healthy"


def test_postgres_preloads_pg_stat_statements() -> None:
    command = _compose()["services"]["postgres"]["command"]
    assert "shared_preload_libraries=pg_stat_statements" in command


def test_no_secret_is_written_in_the_file() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    for variable in ("DB_PASSWORD", "REDIS_PASSWORD", "S3_SECRET_KEY", "PGADMIN_PASSWORD"):
        assert f"${{{variable}" in text, variable
    assert "templator-secret" not in text


def test_published_ports_bind_to_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_pgadmin_server_definition_points_at_the_postgres_service() -> None:
    servers = json.loads((DEPLOY / "pgadmin" / "servers.json").read_text())["Servers"]
    assert [s["Host"] for s in servers.values()] == ["postgres"]

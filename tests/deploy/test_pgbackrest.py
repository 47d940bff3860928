"""The compose PostgreSQL archives every WAL segment through pgBackRest (issue #12)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose_render import environment
from tests.deploy.test_compose import DEPLOY, env, services

__all__ = ["env", "services"]


def _settings(service: dict[str, Any]) -> dict[str, str]:
    command = service["command"]
    return dict(c.split("=", 1) for c in command[command.index("-c") + 1 :: 2])


def test_postgres_archives_wal_through_pgbackrest_within_the_rpo(
    services: dict[str, Any],
) -> None:
    settings = _settings(services["postgres"])
    assert settings["archive_mode"] == "on" and settings["wal_level"] == "replica"
    assert settings["archive_command"] == "pgbackrest --stanza=templator archive-push %p"
    assert 0 < int(settings["archive_timeout"]) < 60


def test_the_postgres_image_is_ours_on_a_debian_base_given_as_an_argument() -> None:
    """No Alpine repository (#23): Debian's postgresql-15 and pgbackrest, our entrypoint."""
    dockerfile = (DEPLOY / "postgres" / "Dockerfile").read_text()
    assert "apk" not in dockerfile
    assert "postgresql-15" in dockerfile and "pgbackrest" in dockerfile
    arg = next(line for line in dockerfile.splitlines() if line.startswith("ARG BASE_IMAGE="))
    assert re.fullmatch(r"ARG BASE_IMAGE=debian:bookworm-slim@sha256:[0-9a-f]{64}", arg)
    assert [line for line in dockerfile.splitlines() if line.startswith("FROM")] == [
        "FROM ${BASE_IMAGE}"
    ]
    entrypoint = DEPLOY / "postgres" / "docker-entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    assert "COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" in dockerfile


def test_the_postgres_health_check_does_not_log_a_failed_login(
    services: dict[str, Any],
) -> None:
    """As root over the socket it logged `Peer authentication failed` every 10 s (#23)."""
    test = services["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    assert test[test.index("-h") + 1] == "127.0.0.1"
    assert test[test.index("-U") + 1] == "postgres"


def test_the_repository_is_a_volume_of_its_own_and_encrypted_with_a_secret(
    services: dict[str, Any], env: dict[str, str]
) -> None:
    postgres = environment(services["postgres"])
    assert f"pgbackrest:{postgres['PGBACKREST_REPO1_PATH']}" in services["postgres"]["volumes"]
    assert postgres["PGBACKREST_REPO1_CIPHER_TYPE"] == "aes-256-cbc"
    assert postgres["PGBACKREST_REPO1_CIPHER_PASS"] == env["PGBACKREST_CIPHER_PASSWORD"] != ""
    for name in ("api", "migrate", "pgadmin"):
        assert env["PGBACKREST_CIPHER_PASSWORD"] not in environment(services[name]).values()


def test_the_stanza_is_created_on_first_start() -> None:
    script = DEPLOY / "postgres" / "initdb" / "20-pgbackrest.sh"
    assert os.access(script, os.X_OK)
    lines = [line for line in script.read_text().splitlines() if not line.startswith("#")]
    assert "pgbackrest stanza-create" in lines
    assert sorted(p.name for p in script.parent.iterdir()) == ["10-roles.sh", "20-pgbackrest.sh"]


@pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="pgbackrest not installed")
def test_pgbackrest_accepts_every_option_the_service_sets(
    services: dict[str, Any], tmp_path: Path
) -> None:
    options = {
        k: v for k, v in environment(services["postgres"]).items() if k.startswith("PGBACKREST_")
    }
    options |= {
        "PGBACKREST_REPO1_PATH": str(tmp_path / "repo"),
        "PGBACKREST_LOG_PATH": str(tmp_path),
        "PGBACKREST_LOCK_PATH": str(tmp_path),
        "PATH": os.environ["PATH"],
    }
    result = subprocess.run(
        ["pgbackrest", "info"], env=options, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "invalid option" not in result.stdout + result.stderr
    assert "stanza: templator" in result.stdout

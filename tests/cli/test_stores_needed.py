"""Commands need only the stores they use: the database commands run with PostgreSQL alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from templator.cli.main import app
from templator.config import get_settings
from templator.dev.localstack.process import free_port
from tests.support import servers

cli = CliRunner()


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database with no schema yet; dropped after."""
    name, url = servers.create_database("templator_pgonly")
    yield url
    servers.drop_database(name)


def _run(args: list[str], env: dict[str, str | None]) -> str:
    get_settings.cache_clear()
    try:
        result = cli.invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()
    output = " ".join(result.output.split())
    assert result.exit_code == 0, f"templator {' '.join(args)}: {output}"
    return output


@pytest.mark.parametrize(
    "redis_url", [None, f"redis://127.0.0.1:{free_port()}/0"], ids=["unset", "unreachable"]
)
def test_database_commands_run_with_postgresql_alone(
    empty_database: str, redis_url: str | None, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {
        "DATABASE_URL": empty_database,
        "REDIS_URL": redis_url,
        "S3_ENDPOINT_URL": None,
        "VAR_DIR": str(tmp_path),  # no local stack runs there
        "REDIS_RETRIES": "0",
    }
    assert "database at" in _run(["db", "migrate"], env)
    assert "head:" in _run(["db", "current"], env)
    _run(["db", "seed", "--users", "2", "--sessions", "3", "--templates", "1", "--json"], env)
    pruned = _run(["db", "prune-logs", "--older-than", "0m", "--yes", "--json"], env)
    assert '"deleted"' in pruned
    with psycopg.connect(empty_database.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT count(*) FROM users").fetchone()
    assert row is not None and row[0] == 2

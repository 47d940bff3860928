"""`templator db prune-logs` (the `prune_logs` command function) against the test database."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from templator.cli.logs import prune_logs
from templator.config import Settings, get_settings
from templator.kit.ids import new_id, new_ids

app = typer.Typer()
app.command()(prune_logs)
runner = CliRunner()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the CLI's own settings at the test stores; yield a libpq DSN."""
    assert settings.database_url is not None and settings.redis_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    get_settings.cache_clear()
    yield settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    get_settings.cache_clear()


@pytest.fixture
def old_and_new_lines(cli_env: str) -> Iterator[str]:
    """A committed session with 30 lines 40 days old and 5 fresh ones; removed after."""
    user_id, project_id, session_id = new_ids(3)
    with psycopg.connect(cli_env, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, f"{user_id}@x.io"))
        conn.execute(
            "INSERT INTO projects (id, name, user_id) VALUES (%s, 'p', %s)", (project_id, user_id)
        )
        conn.execute(
            "INSERT INTO ai_sessions (id, project_id, user_id) VALUES (%s, %s, %s)",
            (session_id, project_id, user_id),
        )
        for age in ["40 days"] * 30 + ["0 days"] * 5:
            conn.execute(
                "INSERT INTO processing_logs (id, session_id, phase, message, timestamp) "
                "VALUES (%s, %s, 'upload', 'x', now() - %s::interval)",
                (new_id(), session_id, age),
            )
    yield session_id
    with psycopg.connect(cli_env, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))


def _left(dsn: str, session_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM processing_logs WHERE session_id = %s", (session_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_prune_with_yes_deletes_old_lines_in_batches_and_reports_json(
    cli_env: str, old_and_new_lines: str
) -> None:
    result = runner.invoke(app, ["--older-than", "30d", "--batch-size", "7", "--yes", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["deleted"] >= 30 and "cutoff" in report
    assert _left(cli_env, old_and_new_lines) == 5


def test_prune_without_yes_refuses_non_interactively_and_deletes_nothing(
    cli_env: str, old_and_new_lines: str
) -> None:
    result = runner.invoke(app, ["--older-than", "30d"])

    assert result.exit_code == 2
    assert "--yes" in result.output
    assert _left(cli_env, old_and_new_lines) == 35


@pytest.mark.parametrize("age", ["30", "1w", "d30", "-3d"])
def test_an_unreadable_age_is_refused_naming_the_format(cli_env: str, age: str) -> None:
    result = runner.invoke(app, ["--older-than", age, "--yes"])

    assert result.exit_code == 2
    assert "d, h or m" in result.output

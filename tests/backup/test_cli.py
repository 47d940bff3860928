"""`templator backup …` end to end: keygen, create/list/verify/restore --json, clean errors."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from templator.backup.crypto import load_key_file
from tests.backup.conftest import Stores, add_user, emails


@dataclass
class Ran:
    """One in-process CLI run (the subprocess start-up costs tens of seconds here)."""

    returncode: int
    stdout: str
    stderr: str


def _run(args: list[str], env: dict[str, str]) -> Ran:
    from typer.testing import CliRunner

    from templator.cli.main import app
    from templator.config import get_settings

    get_settings.cache_clear()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        result = CliRunner().invoke(app, ["backup", *args])
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
    return Ran(result.exit_code, result.stdout, result.stderr)


def _env(stores: Stores, tmp_path: Path, key_file: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BACKUP_", "S3_", "DATABASE_", "REDIS_"))
    }
    env.update(
        DATABASE_URL=stores.urls.database_url,
        REDIS_URL=stores.urls.redis_url,
        S3_ENDPOINT_URL=stores.urls.s3_endpoint_url or "",
        S3_ACCESS_KEY=stores.settings.s3_access_key,
        S3_SECRET_KEY=stores.settings.s3_secret_key.get_secret_value(),
        S3_BUCKET=stores.settings.s3_bucket,
        CACHE_NAMESPACE=stores.settings.cache_namespace,
        VAR_DIR=str(tmp_path / "var"),
        BACKUP_REPOSITORY=str(tmp_path / "repo"),
        BACKUP_ENCRYPTION_KEY_FILE=str(key_file),
        COLUMNS="250",
    )
    return env


def test_the_commands_work_end_to_end_and_never_show_the_key(
    stores: Stores, tmp_path: Path
) -> None:
    key_file = tmp_path / "keys" / "backup.key"
    env = _env(stores, tmp_path, key_file)
    made = _run(["keygen", "-o", str(key_file)], env)
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()

    add_user(stores, "cli@example.com")
    created = _run(["create", "--json"], env)
    assert created.returncode == 0, created.stderr
    facts = json.loads(created.stdout)
    assert facts["encrypted"] is True and facts["method"] == "pg_dump"

    listed = json.loads(_run(["list", "--json"], env).stdout)
    assert listed[0]["name"] == facts["name"]
    revision = stores.sql("SELECT version_num FROM alembic_version")[0][0]
    assert listed[0]["alembic_revision"] == revision
    table = _run(["list"], env).stdout
    assert "Backups in" in table  # the human table renders (its columns are cut to width)

    add_user(stores, "later@example.com")
    refused = _run(["restore", "latest"], env)
    assert refused.returncode != 0 and "without confirmation" in refused.stderr
    assert emails(stores) == {"cli@example.com", "later@example.com"}
    restored = _run(["restore", "latest", "--yes", "--json"], env)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["restored"] == ["postgres", "redis", "objects"]
    assert emails(stores) == {"cli@example.com"}

    status = json.loads(_run(["status", "--json"], env).stdout)
    assert status["newest"] == facts["name"] and status["newest_age_seconds"] >= 0

    outputs = [made, created, restored, refused]
    assert all(secret not in r.stdout + r.stderr for r in outputs)
    assert load_key_file(key_file).key_id in made.stdout


def test_an_expected_failure_is_one_line_without_a_traceback(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from templator.cli.main import app
    from templator.config import get_settings

    for name, value in _env(stores, tmp_path, tmp_path / "missing.key").items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["backup", "create"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "cannot read the backup key file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_the_human_outputs_render_progress_and_tables(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from templator.cli.main import app
    from templator.config import get_settings

    key_file = tmp_path / "k.key"
    for name, value in _env(stores, tmp_path, key_file).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["backup", "keygen", "-o", str(key_file)]).exit_code == 0
        add_user(stores, "human@example.com")
        stores.redis.set("bak-test:k", b"v")
        made = runner.invoke(app, ["backup", "create"])
        assert made.exit_code == 0, made.output
        assert "backup templator-" in made.output and "postgres" in made.output
        for args in (["list"], ["status"], ["verify", "latest", "--drill"], ["prune", "--dry-run"]):
            result = runner.invoke(app, ["backup", *args])
            assert result.exit_code == 0, (args, result.output)
        drilled = runner.invoke(app, ["backup", "status", "--json"])
        assert json.loads(drilled.output)["last_drill"]["ok"] is True
    finally:
        get_settings.cache_clear()


@pytest.mark.slow
def test_restore_with_the_embedded_stack_stopped_starts_it_and_stops_it_again(
    tmp_path: Path,
) -> None:
    import shutil
    import uuid

    import psycopg

    from templator.backup import create as create_mod
    from templator.backup.crypto import generate_key_file
    from templator.backup.set_store import FolderRepository
    from templator.config import PROJECT_ROOT, Settings
    from templator.connections import StoreUrls
    from templator.dev.localstack import LocalStack, discover_running_stack
    from templator.migrations import runner

    var = PROJECT_ROOT / "var" / f"test-stopped-{uuid.uuid4().hex[:8]}"
    settings = Settings(_env_file=None, var_dir=var, cache_namespace="bak-test")  # type: ignore[call-arg]
    key_file = tmp_path / "k.key"
    key = generate_key_file(key_file)
    repo = FolderRepository(tmp_path / "repo")

    def users(url: str) -> set[str]:
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            return {str(r[0]) for r in conn.execute("SELECT email FROM users")}

    def add(url: str, email: str) -> None:
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO users (id, email) VALUES (%s, %s)", (uuid.uuid4().hex[:25], email)
            )

    try:
        with LocalStack(settings) as stack:
            runner.upgrade(stack.urls.admin_database_url or stack.urls.database_url)
            add(stack.urls.database_url, "kept@example.com")
            urls = StoreUrls(
                stack.urls.database_url, stack.urls.redis_url, stack.urls.s3_endpoint_url
            )
            manifest = create_mod.create_backup(
                settings, urls, repo, key=key, include_objects=False
            )
            add(stack.urls.database_url, "later@example.com")
        assert discover_running_stack(var) is None
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BACKUP_", "S3_", "DATABASE_", "REDIS_"))
        }
        env.update(
            VAR_DIR=str(var),
            BACKUP_REPOSITORY=str(repo.root),
            BACKUP_ENCRYPTION_KEY_FILE=str(key_file),
            CACHE_NAMESPACE="bak-test",
        )
        restored = _run(["restore", manifest.name, "--yes", "--json"], env)
        assert restored.returncode == 0, restored.stderr + restored.stdout
        assert discover_running_stack(var) is None, "the restore stops what it started"
        with LocalStack(settings) as stack:
            assert users(stack.urls.database_url) == {"kept@example.com"}
    finally:
        shutil.rmtree(var, ignore_errors=True)

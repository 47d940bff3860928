"""`templator module import|export` on folders of modules, against the test database."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from templator.cli.module import app
from templator.config import Settings, get_settings
from tests.hubspot.test_lossless import CORPUS, assert_lossless, source_files
from tests.support.factories import Committed

runner = CliRunner()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the CLI's own settings at the test stores; yield a libpq DSN."""
    assert settings.database_url is not None and settings.redis_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)
    get_settings.cache_clear()
    yield settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    get_settings.cache_clear()


def templates_of(dsn: str, project_id: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM templates WHERE project_id = %s", (project_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_theme_modules_folder_imports_and_exports_back_as_it_was(
    cli_env: str, committed: Committed, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["import", str(CORPUS), "--project", committed.project_id])
    assert result.exit_code == 0, result.output
    assert "5 module(s) imported" in result.output
    assert templates_of(cli_env, committed.project_id) == 5

    out = tmp_path / "modules"
    result = runner.invoke(app, ["export", "--project", committed.project_id, "-o", str(out)])
    assert result.exit_code == 0, result.output
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        assert_lossless(source_files(folder), source_files(out / folder.name))

    zipped = tmp_path / "modules.zip"
    args = ["export", "--project", committed.project_id, "-o", str(zipped), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["modules"] == 5
    with zipfile.ZipFile(io.BytesIO(zipped.read_bytes())) as archive:
        names = {n.split("/", 1)[0] for n in archive.namelist()}
    assert names == {p.name for p in CORPUS.iterdir() if p.is_dir()}


def test_one_bad_module_stops_the_import_and_nothing_is_stored(
    cli_env: str, committed: Committed, tmp_path: Path
) -> None:
    theme = tmp_path / "modules"
    shutil.copytree(CORPUS, theme)
    (theme / "social-follow.module" / "fields.json").write_text('[\n  {"name": "x",,}\n]')
    result = runner.invoke(app, ["import", str(theme), "--project", committed.project_id])
    assert result.exit_code == 1
    assert "social-follow.module/fields.json: line 2" in result.output
    assert "Traceback" not in result.output
    assert templates_of(cli_env, committed.project_id) == 0


def test_a_module_the_template_limits_refuse_stores_nothing(
    cli_env: str, committed: Committed, tmp_path: Path
) -> None:
    theme = tmp_path / "modules"
    shutil.copytree(CORPUS, theme)
    big = [{"name": f"f{i}", "label": "x" * 900, "type": "text"} for i in range(400)]
    (theme / "faq.module" / "fields.json").write_text(json.dumps(big))
    result = runner.invoke(app, ["import", str(theme), "--project", committed.project_id])
    assert result.exit_code == 1
    assert "faq.module: hubspot_config" in result.output and "nothing was imported" in result.output
    assert templates_of(cli_env, committed.project_id) == 0


def test_an_unknown_project_is_one_line_and_nothing_is_stored(cli_env: str) -> None:
    result = runner.invoke(app, ["import", str(CORPUS), "--project", "p" + "0" * 24])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_check_of_a_stored_template_reads_it_from_the_database(
    cli_env: str, committed: Committed, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["import", str(CORPUS / "faq.module"), "--project", committed.project_id, "--json"]
    )
    assert result.exit_code == 0, result.output
    template_id = json.loads(result.output)["imported"][0]["template_id"]
    result = runner.invoke(app, ["check", template_id, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["modules"][0] == {
        "module": "faq.module",
        "ok": True,
        "score": 1.0,
        "errors": 0,
        "warnings": 0,
        "findings": [],
    }
    result = runner.invoke(app, ["check", "t" + "0" * 24])
    assert result.exit_code == 1 and "does not exist" in result.output


def _two_broken(tmp_path: Path) -> Path:
    theme = tmp_path / "modules"
    shutil.copytree(CORPUS, theme)
    (theme / "social-follow.module" / "fields.json").write_text('[\n  {"name": "x",,}\n]')
    (theme / "faq.module" / "meta.json").write_text('{"label": "FAQ", "content_types": ["X"]}')
    return theme


def test_every_refused_module_is_named_with_why_and_nothing_is_stored(
    cli_env: str, committed: Committed, tmp_path: Path
) -> None:
    theme = _two_broken(tmp_path)
    result = runner.invoke(app, ["import", str(theme), "--project", committed.project_id])
    assert result.exit_code == 1
    assert "social-follow.module/fields.json: line 2" in result.output
    assert "faq.module/meta.json: meta > content_types: content type 'X'" in result.output
    assert "2 of 5 module(s) refused; nothing was imported" in result.output
    assert templates_of(cli_env, committed.project_id) == 0


def test_skip_invalid_imports_the_modules_that_pass_and_lists_the_others(
    cli_env: str, committed: Committed, tmp_path: Path
) -> None:
    theme = _two_broken(tmp_path)
    args = ["import", str(theme), "--project", committed.project_id, "--skip-invalid", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert sorted(r["module"] for r in body["refused"]) == ["faq.module", "social-follow.module"]
    assert len(body["imported"]) == 3
    assert templates_of(cli_env, committed.project_id) == 3


def test_the_wild_corpus_goes_through_the_database_byte_for_byte_nested_folders_kept(
    cli_env: str, committed: Committed, tmp_path: Path
) -> None:
    wild = CORPUS.parent / "wild"
    result = runner.invoke(app, ["import", str(wild), "--project", committed.project_id])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "--project", committed.project_id, "-o", str(out)])
    assert result.exit_code == 0, result.output
    folders = sorted(p for p in wild.rglob("*.module") if p.is_dir())
    assert len(folders) == 9
    for folder in folders:
        assert source_files(out / folder.relative_to(wild)) == source_files(folder)

"""The CLI starts without its heavy libraries, and its help still lists everything.

Structural, not timed (benchmarks/bench_cli_startup.py measures): which modules a fresh
interpreter has loaded after `import templator.cli.main`, `templator --help` and
`templator health`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from templator.cli.main import COMMANDS, app

cli = CliRunner()
HEAVY = {"sqlalchemy", "boto3", "botocore", "fastapi", "alembic", "uvicorn", "s3transfer"}
NOT_FOR_HELP = HEAVY | {"pydantic", "pydantic_settings", "redis", "asyncpg", "psycopg", "rich"}

PROBE = """
import json, sys
sys.argv = ["templator", *json.loads(sys.argv[1])]
from templator.cli.main import app
try:
    app()
except SystemExit:
    pass
print("\\nMODULES " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def loaded_after(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Top-level packages a fresh interpreter holds after `templator ARGS`."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    line = done.stdout.rsplit("MODULES ", 1)
    assert len(line) == 2, done.stdout + done.stderr
    return set(json.loads(line[1]))


def normalized(text: str) -> str:
    return " ".join(text.split())


def test_importing_the_cli_loads_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, templator.cli.main; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert not loaded & NOT_FOR_HELP, loaded & NOT_FOR_HELP


def test_help_loads_no_heavy_library() -> None:
    loaded = loaded_after(["--help"])
    assert "templator" in loaded
    assert not loaded & NOT_FOR_HELP, loaded & NOT_FOR_HELP


def test_health_loads_no_sqlalchemy_boto3_or_fastapi(database_url: str, redis_url: str) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    loaded = loaded_after(["health", "--json"], env)
    assert {"asyncpg", "redis"} <= loaded  # it did probe
    assert not loaded & HEAVY, loaded & HEAVY


def test_root_help_lists_every_command_with_its_help() -> None:
    result = cli.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = normalized(result.output)
    for entry in COMMANDS:
        assert f"{entry.name} {entry.help}" in text, entry.name


def _subcommands(group: Any) -> dict[str, Any]:
    return dict(getattr(group, "commands", {}))


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda e: e.name)
def test_each_command_help_lists_its_commands_and_options_with_help(entry: Any) -> None:
    command = entry.load()
    result = cli.invoke(app, [entry.name, "--help"])
    assert result.exit_code == 0, result.output
    text = normalized(result.output)
    for name, sub in _subcommands(command).items():
        assert f"{name} {normalized(sub.short_help or '')}" in text, name
        sub_help = normalized(cli.invoke(app, [entry.name, name, "--help"]).output)
        for param in sub.params:
            assert getattr(param, "help", None) or param.param_type_name == "argument", (
                f"{entry.name} {name} {param.name}: an option without help"
            )
            if getattr(param, "help", None):
                assert normalized(param.help)[:30] in sub_help, (name, param.name)
    for param in command.params:
        assert getattr(param, "help", None) or param.param_type_name == "argument", param.name

"""`templator deploy`: set-up steps of deploy/docker-compose.yml."""

from __future__ import annotations

from pathlib import Path

import typer

from templator.cli.context import console, fail
from templator.config import PROJECT_ROOT

app = typer.Typer(no_args_is_help=True)

DEPLOY = PROJECT_ROOT / "deploy"


@app.command("secrets")
def secrets_command(
    example: Path = typer.Option(
        DEPLOY / ".env.example",
        "--example",
        help="Template: every variable the compose file needs.",
    ),
    env_file: Path = typer.Option(
        DEPLOY / ".env", "--env-file", help="The file to write (mode 0600); existing values stay."
    ),
) -> None:
    """Write deploy/.env with every empty secret generated (database, Redis, S3, pgAdmin)."""
    from templator.deploy.secrets import write_env

    if not example.is_file():
        fail(f"no template at {example}")
    try:
        report = write_env(example, env_file)
    except (OSError, ValueError) as exc:
        fail(f"cannot write {env_file}: {exc}")
        return
    for key in report.generated:
        console.print(f"generated {key}")
    if report.kept:
        console.print(f"kept {len(report.kept)} existing values")
    console.print(
        f"wrote {report.path} (mode 0600). Next: scripts/deploy-certs.sh, then "
        "`docker compose -f deploy/docker-compose.yml up -d --build`."
    )

"""The root `templator` command and its sub-commands."""

from __future__ import annotations

import typer

from templator.cli import backup, db, demo, health, module, serve, storage, up, users
from templator.cli import deploy as deploy_cli
from templator.cli import pgadmin as pgadmin_cli
from templator.cli.context import configure_logging

app = typer.Typer(
    name="templator",
    help="Templator data platform: PostgreSQL, Redis and S3 storage, cache and operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug output to stderr."),
) -> None:
    """Templator data platform command line."""
    configure_logging(verbose)


app.add_typer(db.app, name="db", help="Migrations, seed data and database maintenance.")
app.command("up")(up.up)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.add_typer(users.user_app, name="user", help="Create users and change roles.")
app.add_typer(users.token_app, name="token", help="Create API tokens.")
app.add_typer(module.app, name="module", help="Export templates as HubSpot modules, import them.")
app.add_typer(storage.app, name="storage", help="Object store maintenance (orphan gc).")
app.add_typer(backup.app, name="backup", help="Back up and restore all three stores.")
app.command("health", help="Check PostgreSQL, Redis and the object store, each on its own.")(
    health.health
)
app.add_typer(deploy_cli.app, name="deploy", help="Set-up steps of deploy/docker-compose.yml.")
app.command("pgadmin")(pgadmin_cli.pgadmin)

"""The root `templator` command and its sub-commands.

Every sub-command is a `LazyCommand` (cli/lazy.py): its module is imported only when it
runs, so `templator --help` and a quick command start without SQLAlchemy, boto3 or
FastAPI. To add a command, write it in its own module under `templator/cli/` (a Typer app
for a group, a function for a single command) and add one line to `COMMANDS` below; keep
heavy imports out of the module's top level where the command does not need them.
"""

from __future__ import annotations

import logging

import typer

from templator.cli.errors import set_verbose
from templator.cli.lazy import LazyCommand, LazyGroup

COMMANDS = (
    LazyCommand("db", "templator.cli.db:app", "Migrations, seed data and database maintenance."),
    LazyCommand(
        "up", "templator.cli.up:up", "Start the local stack, migrate, seed, serve until Ctrl-C."
    ),
    LazyCommand("serve", "templator.cli.serve:serve", "Serve the REST API until Ctrl-C."),
    LazyCommand("demo", "templator.cli.demo:demo", "Run one session end to end over the API."),
    LazyCommand(
        "worker", "templator.cli.worker:worker", "Run the reference worker on ready sessions."
    ),
    LazyCommand("user", "templator.cli.users:user_app", "Create users and change roles."),
    LazyCommand("token", "templator.cli.tokens:app", "Create, list and revoke API tokens."),
    LazyCommand(
        "module",
        "templator.cli.module:app",
        "Export templates as HubSpot modules, import them.",
    ),
    LazyCommand("storage", "templator.cli.storage:app", "Object store maintenance (orphan gc)."),
    LazyCommand("backup", "templator.cli.backup:app", "Back up and restore all three stores."),
    LazyCommand("deploy", "templator.cli.deploy:app", "Set-up steps of deploy/docker-compose.yml."),
    LazyCommand(
        "pgadmin",
        "templator.cli.pgadmin:pgadmin",
        "pgAdmin 4 on 127.0.0.1 with our database (installs on first use).",
    ),
    LazyCommand(
        "monitor", "templator.cli.monitor:monitor", "A live view of every store (like top)."
    ),
    LazyCommand("cache", "templator.cli.maintenance:cache_app", "Redis cache upkeep (SCAN sweep)."),
    LazyCommand(
        "health",
        "templator.cli.health:health",
        "Check PostgreSQL, Redis and the object store, each on its own.",
    ),
)


class TemplatorGroup(LazyGroup):
    """The root group: the commands above, loaded on use."""

    lazy_commands = COMMANDS


app = typer.Typer(
    name="templator",
    cls=TemplatorGroup,
    help="Templator data platform: PostgreSQL, Redis and S3 storage, cache and operations.",
    no_args_is_help=True,
    # Plain help (see cli/lazy.py): Rich's help renderer costs as much as all the rest.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log debug output, and tracebacks of failures, to stderr."
    ),
) -> None:
    """Templator data platform command line."""
    set_verbose(verbose)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )

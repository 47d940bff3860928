"""`templator pgadmin`: pgAdmin 4 on 127.0.0.1 with our database registered, until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import typer

from templator.cli.context import console, err_console, fail, settings

DEFAULT_PORT = 5050


def pgadmin(
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Port on 127.0.0.1 (default 5050, or a free one)."
    ),
    install_dir: Path | None = typer.Option(
        None,
        envvar="PGADMIN_VENV",
        help="pgAdmin's own virtual environment (default VAR_DIR/pgadmin/venv); made on "
        "first use, about a minute and ~620 MB.",
    ),
    startup_timeout: float = typer.Option(
        180.0, min=1, help="Seconds to wait for pgAdmin to answer."
    ),
) -> None:
    """Run pgAdmin 4 (desktop mode: no login, no master password) on our database."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from templator.dev.localstack import discover_running_stack
    from templator.dev.localstack.process import free_port, port_is_free
    from templator.pgadmin import install, server

    conf = settings()
    database_url = conf.database_url
    if database_url is None:
        stack = discover_running_stack(conf.var_dir)
        database_url = stack.database_url if stack else None
    if database_url is None:
        fail(
            "no database to show: set DATABASE_URL (or DB_HOST & co.), or start the local "
            "stack with `templator up`"
        )
        return
    home = conf.var_dir / "pgadmin"
    paths = server.PgAdminPaths(venv=install_dir or home / "venv", data=home / "data")
    if port is None:
        port = DEFAULT_PORT if port_is_free("127.0.0.1", DEFAULT_PORT) else free_port()
    elif not port_is_free("127.0.0.1", port):
        fail(f"port {port} on 127.0.0.1 is in use: choose another with --port")

    try:
        if install.installed_version(paths.venv) != install.PGADMIN_VERSION:
            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            with Progress(*columns, console=err_console, transient=True) as progress:
                task = progress.add_task(f"installing pgAdmin {install.PGADMIN_VERSION}")

                def show(line: str) -> None:
                    progress.update(task, description=f"installing pgAdmin: {line[:90]}")

                install.ensure_installed(paths.venv, on_line=show)
            err_console.print(f"installed pgAdmin {install.PGADMIN_VERSION} in {paths.venv}")
        server.write_config(paths, port=port)
        with err_console.status("registering the database in pgAdmin"):
            server.register_server(paths, database_url)
        process = server.start(paths)
    except (install.PgAdminInstallError, server.PgAdminError, OSError) as exc:
        fail(str(exc), code=1)
        return
    url = f"http://127.0.0.1:{port}"
    try:
        with err_console.status("starting pgAdmin"):
            server.wait_ready(process, url, paths.log, startup_timeout)
        console.print(
            f"pgAdmin 4 at [bold]{url}[/] (server '{server.SERVER_NAME}'); Ctrl-C stops it"
        )
        code = process.wait()
        fail(f"pgAdmin exited with {code}; log: {paths.log}", code=1)
    except server.PgAdminError as exc:
        fail(str(exc), code=1)
    except KeyboardInterrupt:
        err_console.print("stopping pgAdmin")
    finally:
        server.stop(process)

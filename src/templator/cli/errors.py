"""How a command reports a failure it expects: one line naming what went wrong and what to
do, and a non-zero exit; `templator -v` adds the traceback.

One function, `explain`, knows the failures an operator can cause or meet — a store that
is down or refuses us, a bad id or argument, a path that cannot be read or written, a
malformed file — and `exit_for` prints its line. Both the `run()` helper of every command
and the root command's last-resort handler (`cli/lazy.py`) call them, so a new command is
covered without code of its own. Anything `explain` does not know is a bug and keeps its
traceback.

Exception types are named by their public import path ("asyncpg.PostgresConnectionError")
and checked with `isinstance` against the class found in `sys.modules`: a library that
was never imported cannot have raised anything, so this module imports none of the
libraries whose errors it explains (the CLI starts fast), and a class that a library
moves or renames fails `tests/cli/test_errors.py` by name instead of silently matching
nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import Any, NoReturn

import typer

from templator.exceptions import TemplatorError, first_line

_state = {"verbose": False}

POSTGRES_HINT = (
    "Check that PostgreSQL is running and that DATABASE_URL (host, port, user, password, "
    "database) is right; with DATABASE_URL unset, start the local stack with `templator up`."
)
REDIS_HINT = (
    "Check that Redis is running and that REDIS_URL is right; with REDIS_URL unset, start "
    "the local stack with `templator up`."
)
S3_HINT = "Check that the S3 server is running and that S3_ENDPOINT_URL is right."


def set_verbose(verbose: bool) -> None:
    """Whether failures also print their traceback (`templator -v`)."""
    _state["verbose"] = verbose


def loaded_class(path: str) -> type[BaseException] | None:
    """The exception class at the public import path `module.Name` if that module is
    already imported, else None (nothing of it can have been raised)."""
    module_name, _, name = path.rpartition(".")
    module = sys.modules.get(module_name)
    found = getattr(module, name, None) if module is not None else None
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _is(exc: BaseException, *paths: str) -> bool:
    """Whether `exc` is an instance of any of the classes at `paths` (see loaded_class)."""
    for path in paths:
        cls = loaded_class(path)
        if cls is not None and isinstance(exc, cls):
            return True
    return False


POSTGRES_UNAVAILABLE = (
    "psycopg.OperationalError",
    "psycopg.InterfaceError",
    "sqlalchemy.exc.OperationalError",
    "sqlalchemy.exc.InterfaceError",
    # asyncpg by SQLSTATE class, as psycopg's OperationalError covers them: 08
    # connection, 53 resources, 57 operator intervention (starting up, shutting down), 58
    # system; and InterfaceError for a connection that is gone.
    "asyncpg.PostgresConnectionError",
    "asyncpg.InsufficientResourcesError",
    "asyncpg.OperatorInterventionError",
    "asyncpg.PostgresSystemError",
    "asyncpg.InterfaceError",
    "asyncpg.InvalidAuthorizationSpecificationError",
    "asyncpg.InvalidCatalogNameError",
)
REDIS_UNAVAILABLE = ("redis.exceptions.ConnectionError", "redis.exceptions.TimeoutError")
S3_UNAVAILABLE = (
    "botocore.exceptions.EndpointConnectionError",
    "botocore.exceptions.ConnectionError",
    "botocore.exceptions.ConnectTimeoutError",
    "botocore.exceptions.ReadTimeoutError",
    "botocore.exceptions.ConnectionClosedError",
)
EXPLAINED_PATHS = (
    *POSTGRES_UNAVAILABLE,
    *REDIS_UNAVAILABLE,
    *S3_UNAVAILABLE,
    "psycopg.errors.UndefinedTable",
    "asyncpg.UndefinedTableError",
    "redis.exceptions.AuthenticationError",
    "redis.exceptions.ResponseError",
    "botocore.exceptions.ClientError",
    "botocore.exceptions.NoCredentialsError",
    "botocore.exceptions.BotoCoreError",
    "pydantic_core.ValidationError",
    "alembic.util.CommandError",
    "zipfile.BadZipFile",
)
"""Every class this module recognises (tests import each and check it is found)."""


_first_line = first_line


def _postgres(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    inner = orig if isinstance(orig, BaseException) else exc
    if _is(inner, "psycopg.errors.UndefinedTable", "asyncpg.UndefinedTableError"):
        return (
            f"the database has no such table ({_first_line(inner)}): "
            "run `templator db migrate` first"
        )
    if _is(inner, *POSTGRES_UNAVAILABLE) or _is(exc, *POSTGRES_UNAVAILABLE):
        return f"PostgreSQL is unavailable: {_first_line(inner)}. {POSTGRES_HINT}"
    return None


def _redis(exc: BaseException) -> str | None:
    if _is(exc, "redis.exceptions.AuthenticationError") or (
        _is(exc, "redis.exceptions.ResponseError") and "NOAUTH" in str(exc)
    ):
        return f"Redis refused us: {_first_line(exc)}. Check the password in REDIS_URL."
    if _is(exc, *REDIS_UNAVAILABLE):
        return f"Redis is unavailable: {_first_line(exc)}. {REDIS_HINT}"
    return None


def _s3(exc: BaseException) -> str | None:
    if _is(exc, *S3_UNAVAILABLE):
        return f"the object store is unavailable: {_first_line(exc)}. {S3_HINT}"
    if _is(exc, "botocore.exceptions.ClientError"):
        error: dict[str, Any] = getattr(exc, "response", {}).get("Error", {})
        code = str(error.get("Code", ""))
        operation = getattr(exc, "operation_name", "")
        if code == "NoSuchBucket" or (code == "404" and operation == "HeadBucket"):
            bucket = error.get("BucketName") or "S3_BUCKET"
            return (
                f"the object store has no bucket {bucket!r}: create it (the local stack "
                "does on start) or set S3_BUCKET to one that exists"
            )
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403"):
            return (
                f"the object store refused our credentials ({code}): "
                "check S3_ACCESS_KEY and S3_SECRET_KEY"
            )
        return f"the object store answered {code or 'an error'}: {_first_line(exc)}"
    if _is(exc, "botocore.exceptions.NoCredentialsError", "botocore.exceptions.BotoCoreError"):
        return f"object store client error: {_first_line(exc)}. {S3_HINT}"
    return None


def _validation(exc: BaseException) -> str | None:
    if not _is(exc, "pydantic_core.ValidationError"):
        return None
    errors: list[dict[str, Any]] = exc.errors()  # type: ignore[attr-defined]
    if not errors:
        return f"invalid value: {_first_line(exc)}"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "value"
    got = first.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
    more = f"; and {len(errors) - 1} more" if len(errors) > 1 else ""
    return f"invalid {where}: {first.get('msg', 'not accepted')}{shown}{more}"


def _processes(exc: BaseException) -> str | None:
    """An external tool (pg_dump, pgbackrest, redis-cli…) that failed or hung."""
    if isinstance(exc, subprocess.CalledProcessError | subprocess.TimeoutExpired):
        first = exc.cmd.split()[0] if isinstance(exc.cmd, str) else str(exc.cmd[0])
        command = PurePath(first).name
        output = exc.stderr or exc.output or b""
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        last = [line.strip() for line in text.strip().splitlines() if line.strip()]
        detail = f": {last[-1]}" if last else ""
        if isinstance(exc, subprocess.TimeoutExpired):
            return f"{command} did not finish within {exc.timeout:.2g} s{detail}"
        return f"{command} failed with exit code {exc.returncode}{detail}"
    if isinstance(exc, TimeoutError):
        return f"timed out{': ' + str(exc) if str(exc) else ''}"
    return None


def _files(exc: BaseException) -> str | None:
    if isinstance(exc, json.JSONDecodeError):  # orjson's error is a subclass
        return f"a JSON file is malformed: {_first_line(exc)}"
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text: {_first_line(exc)}"
    if _is(exc, "zipfile.BadZipFile"):
        return f"not a valid zip file: {_first_line(exc)}"
    if isinstance(exc, OSError):
        reason = exc.strerror or _first_line(exc)
        if exc.filename is not None:
            target = f"{exc.filename}" + (f" → {exc.filename2}" if exc.filename2 else "")
            return f"cannot use {target}: {reason}"
        return f"system error: {reason}"
    return None


def _migrations(exc: BaseException) -> str | None:
    if _is(exc, "alembic.util.CommandError"):
        return f"migrations: {_first_line(exc)} (see `templator db current`)"
    return None


_EXPLAINERS: tuple[Callable[[BaseException], str | None], ...] = (
    _postgres,
    _redis,
    _s3,
    _validation,
    _migrations,
    _processes,
    _files,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it, innermost last (cycles stop the walk)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def explain(exc: BaseException) -> str | None:
    """The one-line message for an expected failure; None when it is a bug."""
    for link in _chain(exc):
        if isinstance(link, TemplatorError):
            if link.field and link.field not in link.message:
                return f"{link.field}: {link.message}"
            return link.message
        for explainer in _EXPLAINERS:
            message = explainer(link)
            if message is not None:
                return message
    return None


def exit_for(exc: BaseException, *, code: int = 1) -> NoReturn:
    """Print the failure's line (and with -v its traceback) and exit; re-raise a bug."""
    if isinstance(exc, BrokenPipeError):  # `templator … | head`: the reader has gone
        raise typer.Exit(code) from None
    message = explain(exc)
    if message is None:
        raise exc
    from rich.console import Console

    console = Console(stderr=True)
    if _state["verbose"]:
        console.print("".join(traceback.format_exception(exc)), markup=False, highlight=False)
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None

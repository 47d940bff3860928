"""How a command reports a failure it expects: one line naming what went wrong and what to
do, and a non-zero exit; `templator -v` adds the traceback.

One function, `explain`, knows the failures an operator can cause or meet — a store that
is down or refuses us, a bad id or argument, a path that cannot be read or written, a
malformed file — and `exit_for` prints its line. Both the `run()` helper of every command
and the root command's last-resort handler (`cli/lazy.py`) call them, so a new command is
covered without code of its own. Anything `explain` does not know is a bug and keeps its
traceback.

Exception types are recognised by their module and name along the class hierarchy, so
this module imports none of the libraries whose errors it explains (the CLI starts fast).
"""

from __future__ import annotations

import json
import subprocess
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


def _names(exc: BaseException) -> set[str]:
    """`module.Name` of the exception's class and of every base class."""
    names = set()
    for cls in type(exc).__mro__:
        names.add(f"{cls.__module__}.{cls.__qualname__}")
        names.add(f"{cls.__module__.split('.')[0]}.{cls.__qualname__}")
    return names


_first_line = first_line


def _postgres(exc: BaseException, names: set[str]) -> str | None:
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    inner = orig if isinstance(orig, BaseException) else exc
    inner_names = _names(inner) | names
    if inner_names & {"psycopg.errors.UndefinedTable", "asyncpg.UndefinedTableError"}:
        return (
            f"the database has no such table ({_first_line(inner)}): "
            "run `templator db migrate` first"
        )
    if inner_names & {
        "psycopg.OperationalError",
        "psycopg.InterfaceError",
        "sqlalchemy.exc.OperationalError",
        "sqlalchemy.exc.InterfaceError",
        "asyncpg.exceptions._base.PostgresConnectionError",
        "asyncpg.InvalidAuthorizationSpecificationError",
        "asyncpg.InvalidPasswordError",
        "asyncpg.InvalidCatalogNameError",
    }:
        return f"PostgreSQL is unavailable: {_first_line(inner)}. {POSTGRES_HINT}"
    return None


def _redis(exc: BaseException, names: set[str]) -> str | None:
    if "redis.exceptions.AuthenticationError" in names or (
        "redis.exceptions.ResponseError" in names and "NOAUTH" in str(exc)
    ):
        return f"Redis refused us: {_first_line(exc)}. Check the password in REDIS_URL."
    if names & {"redis.exceptions.ConnectionError", "redis.exceptions.TimeoutError"}:
        return f"Redis is unavailable: {_first_line(exc)}. {REDIS_HINT}"
    return None


def _s3(exc: BaseException, names: set[str]) -> str | None:
    if names & {
        "botocore.exceptions.EndpointConnectionError",
        "botocore.exceptions.ConnectionError",
        "botocore.exceptions.ConnectTimeoutError",
        "botocore.exceptions.ReadTimeoutError",
        "botocore.exceptions.ConnectionClosedError",
    }:
        return f"the object store is unavailable: {_first_line(exc)}. {S3_HINT}"
    if "botocore.exceptions.ClientError" in names:
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
    if names & {"botocore.exceptions.NoCredentialsError", "botocore.exceptions.BotoCoreError"}:
        return f"object store client error: {_first_line(exc)}. {S3_HINT}"
    return None


def _validation(exc: BaseException, names: set[str]) -> str | None:
    if "pydantic_core.ValidationError" not in names:
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


def _processes(exc: BaseException, names: set[str]) -> str | None:
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


def _files(exc: BaseException, names: set[str]) -> str | None:
    if isinstance(exc, json.JSONDecodeError):  # orjson's error is a subclass
        return f"a JSON file is malformed: {_first_line(exc)}"
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text: {_first_line(exc)}"
    if "zipfile.BadZipFile" in names:
        return f"not a valid zip file: {_first_line(exc)}"
    if isinstance(exc, OSError):
        reason = exc.strerror or _first_line(exc)
        if exc.filename is not None:
            target = f"{exc.filename}" + (f" → {exc.filename2}" if exc.filename2 else "")
            return f"cannot use {target}: {reason}"
        return f"system error: {reason}"
    return None


def _migrations(exc: BaseException, names: set[str]) -> str | None:
    if "alembic.util.exc.CommandError" in names:
        return f"migrations: {_first_line(exc)} (see `templator db current`)"
    return None


_EXPLAINERS: tuple[Callable[[BaseException, set[str]], str | None], ...] = (
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
        names = _names(link)
        for explainer in _EXPLAINERS:
            message = explainer(link, names)
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

"""`cli/errors.py` on failures no store is needed to make: external tools, timeouts, bugs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from templator.cli.errors import EXPLAINED_PATHS, explain, loaded_class
from templator.exceptions import NotFound


def test_a_failed_tool_is_named_with_its_last_error_line() -> None:
    with pytest.raises(subprocess.CalledProcessError) as caught:
        subprocess.run(
            [sys.executable, "-c", "import sys; sys.exit('pg_dump: error: connection refused')"],
            check=True,
            capture_output=True,
        )
    message = explain(caught.value)
    assert message is not None
    assert "failed with exit code 1" in message and "connection refused" in message


def test_a_hung_tool_is_named_with_its_limit() -> None:
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        subprocess.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)
    message = explain(caught.value)
    assert message is not None and "did not finish within 0.2 s" in message


def test_an_error_caused_by_an_expected_one_is_explained_by_its_cause() -> None:
    try:
        try:
            raise NotFound("no template 'x'")
        except NotFound as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as outer:
        assert explain(outer) == "no template 'x'"


def test_a_bug_is_not_explained_away() -> None:
    assert explain(KeyError("oops")) is None
    assert explain(TypeError("unsupported operand")) is None


@pytest.mark.parametrize("path", EXPLAINED_PATHS)
def test_every_recognised_exception_class_is_where_it_is_named(path: str) -> None:
    """A library upgrade that moves or renames one of them fails here, by name."""
    module = path.rpartition(".")[0]
    importlib.import_module(module)
    assert loaded_class(path) is not None, f"{path} is no longer an exception class there"


def test_a_library_never_imported_is_not_looked_up() -> None:
    assert loaded_class("templator_no_such_library.SomeError") is None


def test_an_asyncpg_connection_failure_is_postgres_unavailable() -> None:
    """asyncpg's connection errors were named by a private module path that matched
    nothing, so `templator health` showed them as a bug with a traceback."""
    import asyncpg

    lost = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
    assert (explain(lost) or "").startswith("PostgreSQL is unavailable")
    cannot = asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
    assert (explain(cannot) or "").startswith("PostgreSQL is unavailable")

"""`cli/errors.py` on failures no store is needed to make: external tools, timeouts, bugs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from templator.cli.errors import explain
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

"""`first_line`: the one definition of what a one-line message shows of an error."""

from __future__ import annotations

from templator.exceptions import first_line


def test_the_first_non_blank_line_stripped() -> None:
    assert (
        first_line(RuntimeError("\n  connection refused  \nDETAIL: more")) == "connection refused"
    )


def test_an_empty_message_is_the_exception_class() -> None:
    assert first_line(TimeoutError()) == "TimeoutError"
    assert first_line("") == ""
